// Diffusion's noise schedules and samplers, for any denoiser: the forward process
//   x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε,   t = 0 .. T-1,
// with ᾱ_t from a linear schedule of β (DDPM's, or Stable Diffusion's "scaled linear": linear in sqrt β) or
// the cosine schedule (Nichol & Dhariwal, 2021); and four ways back from noise, over a subset of the T
// steps:
//   ddpm        ancestral sampling (Ho et al., 2020), the posterior's mean plus its variance's noise;
//   ddim        the DDIM update (Song et al., 2021): deterministic at η = 0, the default; at η = 1 DDPM's
//               ancestral step, and between them a share of its noise;
//   dpm++2m     DPM-Solver++(2M) (Lu et al., 2022): second-order multistep on the data prediction, in λ =
//               log(α / σ);
//   dpm++2m-sde its stochastic form (SDE-DPM-Solver++(2M), as diffusers' "sde-dpmsolver++"): the same
//               multistep, each step putting fresh noise in place of part of what it removes.
// Stochastic sampling forgives an imperfect denoiser more: each step's noise washes out part of the errors
// made before it, which the deterministic samplers carry to the end.
// The denoiser predicts ε or v (v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x_0, Salimans & Ho, 2022); classifier-free
// guidance lives in the denoiser the caller passes. A run visits timesteps evenly spread from T-1 to 0, then
// steps to the clean sample (ᾱ = 1). Tested on Gaussian data, whose exact denoiser is known
// (tests/diffusion/test_sampler.cpp): DDIM and DPM-Solver++ converge to the exact flow, at first and second
// order; DDPM, DDIM at η = 1 and DPM-Solver++(2M) SDE over many steps sample the data's distribution.
//
//   auto schedule = mmlearn::NoiseSchedule::make({.kind = ScheduleKind::scaled_linear});
//   auto x0 = mmlearn::sample(schedule, denoiser, torch::randn({4, 4, 8, 8}), {.sampler = Sampler::dpmpp_2m,
//                             .steps = 25}, generator);
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace mmlearn {

enum class ScheduleKind { linear, scaled_linear, cosine };
ScheduleKind parse_schedule(const std::string& name);  // "linear", "scaled-linear", "cosine"; UsageError
enum class Prediction { epsilon, v };
Prediction parse_prediction(const std::string& name);  // "epsilon", "v"
enum class Sampler { ddpm, ddim, dpmpp_2m, dpmpp_2m_sde };
Sampler parse_sampler(const std::string& name);  // "ddpm", "ddim", "dpm++2m", "dpm++2m-sde"
const std::vector<std::pair<Sampler, std::string>>& sampler_names();  // each sampler with its name
std::string sampler_name(Sampler sampler);
// --eta given with `sampler`: a usage error unless it is DDIM, whose η it is.
void check_eta_applies(Sampler sampler);

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::scaled_linear;
  int64_t steps = 1000;                           // T
  double beta_start = 0.00085, beta_end = 0.012;  // the linear kinds' (Stable Diffusion's defaults)
};

struct NoiseSchedule {
  static NoiseSchedule make(const ScheduleOptions& options);
  int64_t steps() const { return static_cast<int64_t>(alphas_cumprod.size()); }
  std::vector<double> alphas_cumprod;  // ᾱ_t, t = 0 .. T-1
};

struct SampleOptions {
  Sampler sampler = Sampler::dpmpp_2m;
  int64_t steps = 25;  // denoising steps, at most T
  Prediction prediction = Prediction::epsilon;
  double eta = 0;  // DDIM's η, 0 to 1: each step's noise, as a share of DDPM's (its standard deviation)
  // Image-to-image: the first `skip` of the run's timesteps are left out, and x is already noised to
  // timestep sampling_timesteps(T, steps)[skip] (SDEdit).
  int64_t skip = 0;
};

// The timesteps a run of `steps` visits, from T-1 down to 0, evenly spread (rounded).
std::vector<int64_t> sampling_timesteps(int64_t schedule_steps, int64_t steps);

// The denoiser's output (ε or v, as SampleOptions::prediction says) for x_t at timestep t.
using Denoiser = std::function<torch::Tensor(const torch::Tensor& x, int64_t t)>;

// From x_T (noise, as the caller draws it) to a sample of x_0. `generator` draws the stochastic samplers'
// noise.
torch::Tensor sample(const NoiseSchedule& schedule, const Denoiser& denoiser, torch::Tensor x,
                     const SampleOptions& options, at::Generator generator);

}  // namespace mmlearn
