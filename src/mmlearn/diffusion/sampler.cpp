#include "mmlearn/diffusion/sampler.h"

#include <torch/torch.h>

#include <cmath>

#include "mmlearn/core/error.h"

namespace mmlearn {

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "linear") return ScheduleKind::linear;
  if (name == "scaled-linear") return ScheduleKind::scaled_linear;
  if (name == "cosine") return ScheduleKind::cosine;
  throw UsageError(
      str_cat("unknown noise schedule \"", name, "\" (expected linear, scaled-linear or cosine)"));
}

Prediction parse_prediction(const std::string& name) {
  if (name == "epsilon") return Prediction::epsilon;
  if (name == "v") return Prediction::v;
  throw UsageError(str_cat("unknown prediction \"", name, "\" (expected epsilon or v)"));
}

const std::vector<std::pair<Sampler, std::string>>& sampler_names() {
  static const std::vector<std::pair<Sampler, std::string>> names = {{Sampler::ddpm, "ddpm"},
                                                                     {Sampler::ddim, "ddim"},
                                                                     {Sampler::dpmpp_2m, "dpm++2m"},
                                                                     {Sampler::dpmpp_2m_sde, "dpm++2m-sde"}};
  return names;
}

Sampler parse_sampler(const std::string& name) {
  for (const auto& [sampler, known] : sampler_names())
    if (known == name) return sampler;
  std::vector<std::string> known;
  for (const auto& entry : sampler_names()) known.push_back(entry.second);
  throw UsageError(str_cat("unknown sampler \"", name, "\" (expected one of ", join(known), ")"));
}

std::string sampler_name(Sampler sampler) {
  for (const auto& [known, name] : sampler_names())
    if (known == sampler) return name;
  throw Error("a sampler without a name");
}

void check_eta_applies(Sampler sampler) {
  if (sampler != Sampler::ddim)
    throw UsageError(str_cat("--eta is DDIM's η; the sampler here is ", sampler_name(sampler),
                             " (add --sampler ddim, or leave --eta out)"));
}

NoiseSchedule NoiseSchedule::make(const ScheduleOptions& o) {
  check(o.steps >= 2 && o.steps <= 100000, "noise schedule: ", o.steps, " steps (expected 2 to 100000)");
  check(o.kind == ScheduleKind::cosine || (o.beta_start > 0 && o.beta_start <= o.beta_end && o.beta_end < 1),
        "noise schedule: betas from ", o.beta_start, " to ", o.beta_end, " (expected 0 < start <= end < 1)");
  const auto T = static_cast<double>(o.steps);
  NoiseSchedule s;
  double cumprod = 1;
  for (int64_t t = 0; t < o.steps; ++t) {
    const double f = o.steps > 1 ? double(t) / (T - 1) : 0;
    double beta = 0;
    switch (o.kind) {
      case ScheduleKind::linear:
        beta = o.beta_start + f * (o.beta_end - o.beta_start);
        break;
      case ScheduleKind::scaled_linear: {
        const double root = std::sqrt(o.beta_start) + f * (std::sqrt(o.beta_end) - std::sqrt(o.beta_start));
        beta = root * root;
        break;
      }
      case ScheduleKind::cosine: {
        // ᾱ(u) = cos²((u + s) / (1 + s) · π/2), s = 0.008; β_t = 1 - ᾱ((t+1)/T) / ᾱ(t/T), at most 0.999.
        auto alpha_bar = [](double u) {
          const double c = std::cos((u + 0.008) / 1.008 * M_PI / 2);
          return c * c;
        };
        beta = std::min(1 - alpha_bar((double(t) + 1) / T) / alpha_bar(double(t) / T), 0.999);
        break;
      }
    }
    cumprod *= 1 - beta;
    s.alphas_cumprod.push_back(cumprod);
  }
  return s;
}

std::vector<int64_t> sampling_timesteps(int64_t schedule_steps, int64_t steps) {
  if (steps < 1 || steps > schedule_steps)
    throw UsageError(str_cat("--steps ", steps, ": must be between 1 and the schedule's ", schedule_steps));
  std::vector<int64_t> out;
  for (int64_t i = 0; i < steps; ++i)
    out.push_back(steps == 1
                      ? schedule_steps - 1
                      : std::llround(double(schedule_steps - 1) * double(steps - 1 - i) / double(steps - 1)));
  return out;
}

torch::Tensor sample(const NoiseSchedule& schedule, const Denoiser& denoiser, torch::Tensor x,
                     const SampleOptions& o, at::Generator generator) {
  const auto timesteps = sampling_timesteps(schedule.steps(), o.steps);
  check(o.skip >= 0 && o.skip < o.steps, "sample: skip ", o.skip, " must be below the steps ", o.steps);
  check(o.eta >= 0 && o.eta <= 1, "sample: η ", o.eta, " (expected 0 to 1)");
  check(o.eta == 0 || o.sampler == Sampler::ddim, "sample: η is DDIM's");
  auto noise = [&](const torch::Tensor& like) {
    return torch::randn(like.sizes(), generator, like.options());
  };
  torch::NoGradGuard no_grad;
  torch::Tensor last_x0;  // DPM-Solver++(2M): the data prediction of the step before, and its λ
  double last_lambda = 0;
  for (size_t i = static_cast<size_t>(o.skip); i < timesteps.size(); ++i) {
    const int64_t t = timesteps[i], prev = i + 1 < timesteps.size() ? timesteps[i + 1] : -1;
    // The step after the last ends at the clean sample: ᾱ = 1.
    const double abar = schedule.alphas_cumprod[static_cast<size_t>(t)],
                 abar_prev = prev >= 0 ? schedule.alphas_cumprod[static_cast<size_t>(prev)] : 1.0;
    const double alpha = std::sqrt(abar), sigma = std::sqrt(1 - abar);
    const auto out = denoiser(x, t).to(x.scalar_type());
    torch::Tensor x0, eps;
    if (o.prediction == Prediction::epsilon) {
      eps = out;
      x0 = (x - sigma * eps) / alpha;
    } else {
      x0 = alpha * x - sigma * out;
      eps = sigma * x + alpha * out;
    }
    switch (o.sampler) {
      case Sampler::ddim: {
        // σ² = η² times the posterior's variance (DDPM's); the direction to x_t keeps what is left.
        const double variance =
            prev >= 0 ? o.eta * o.eta * (1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev) : 0.0;
        x = std::sqrt(abar_prev) * x0 + std::sqrt(std::max(1 - abar_prev - variance, 0.0)) * eps;
        if (variance > 0) x = x + std::sqrt(variance) * noise(x);
        break;
      }
      case Sampler::ddpm: {
        // The posterior q(x_prev | x_t, x_0) between the two visited steps.
        const double beta_step = 1 - abar / abar_prev;
        const auto mean = (std::sqrt(abar_prev) * beta_step / (1 - abar)) * x0 +
                          (std::sqrt(1 - beta_step) * (1 - abar_prev) / (1 - abar)) * x;
        x = mean;
        if (prev >= 0) {
          const double variance = std::max((1 - abar_prev) / (1 - abar) * beta_step, 1e-20);
          x = x + std::sqrt(variance) * noise(x);
        }
        break;
      }
      case Sampler::dpmpp_2m:
      case Sampler::dpmpp_2m_sde: {
        const double lambda = std::log(alpha / sigma);
        if (prev < 0) {
          x = x0;  // to σ = 0 (λ = ∞): the data prediction itself
          break;
        }
        const double alpha_prev = std::sqrt(abar_prev), sigma_prev = std::sqrt(1 - abar_prev);
        const double h = std::log(alpha_prev / sigma_prev) - lambda;
        // D = (1 + 1/(2r)) x0 - 1/(2r) x0_before, r = h_before / h; the first step is first order.
        auto d = x0;
        if (last_x0.defined()) d = x0 + (0.5 * h / (lambda - last_lambda)) * (x0 - last_x0);
        if (o.sampler == Sampler::dpmpp_2m) {
          x = (sigma_prev / sigma) * x - alpha_prev * std::expm1(-h) * d;
        } else {  // the SDE's: x_t's share shrinks by a further e^-h, and fresh noise makes up the variance
          x = (sigma_prev / sigma * std::exp(-h)) * x - alpha_prev * std::expm1(-2 * h) * d +
              sigma_prev * std::sqrt(-std::expm1(-2 * h)) * noise(x);
        }
        last_x0 = x0;
        last_lambda = lambda;
        break;
      }
    }
  }
  return x;
}

}  // namespace mmlearn
