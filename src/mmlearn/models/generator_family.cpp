// The text-to-image generator's row in the registry (models/generator.h). `train --task generate` trains
// both parts of latent diffusion in one run: the autoencoder for the first --autoencoder-steps steps
// (reconstruction L1 and SD's small KL term), then — with the autoencoder frozen, every training image
// encoded once and the latents scaled to unit variance as SD's 0.18215 does — the UNet to predict the noise
// added at a random timestep, the caption dropped one time in ten for classifier-free guidance. The text
// tower is --init-from's CLIP (frozen, as SD keeps its text encoder) or a new clip-tiny text tower learned
// alongside the UNet.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/models/clip_import.h"
#include "mmlearn/models/generator.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/text/learn_tokenizer.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kCaptionDropout = 0.1;
constexpr int64_t kEncodeBatch = 32;  // larger batches encode slower here (memory-bound activations)

// The parts one optimizer trains, registered under the directory's folder names.
struct GeneratorPartsImpl : torch::nn::Module {
  explicit GeneratorPartsImpl(GeneratorBundle& g) {
    register_module("text_encoder", g.text.model);
    register_module("vae", g.vae);
    register_module("unet", g.unet);
  }
};
TORCH_MODULE(GeneratorParts);

// What a run trains: the checkpoint's generator, or a new one over --init-from's CLIP (or a new clip-tiny
// with a tokenizer given or learned from the captions).
GeneratorBundle generator_to_train(const TrainOptions& o, const fs::path& resume_from,
                                   const data::Manifest& train) {
  if (!resume_from.empty()) return load_generator(resume_from);
  if (!o.init_from.empty() && !o.tokenizer.empty())
    throw UsageError("--tokenizer cannot be combined with --init-from: the CLIP model's tokenizer is used");
  if (!o.init_from.empty()) return make_generator(o.preset, open_clip(o.init_from), 64);
  ClipConfig config = clip_preset("clip-tiny");
  text::BpeTokenizer tokenizer = o.tokenizer.empty() ? text::learn_tokenizer(train, o.vocab_size.value())
                                                     : text::BpeTokenizer::load(o.tokenizer);
  config.text.vocab_size = tokenizer.vocab_size();
  config.text.eot_token_id = tokenizer.eot_id();
  return make_generator(o.preset, ClipBundle{Clip(config), std::move(tokenizer)}, 64);
}

class GeneratorTask : public TrainTask {
 public:
  GeneratorTask(const TrainOptions& o, const fs::path& resume_from, data::Manifest train)
      : g_(generator_to_train(o, resume_from, train)),
        parts_(g_),
        autoencoder_steps_(o.autoencoder_steps.value()),
        text_frozen_(!o.init_from.empty()) {
    data::ImageTextOptions load;
    load.image_size = g_.config.image_size;
    load.context_length = g_.text.model->config.text.context_length;
    if (o.max_image_pixels > 0) load.decode.max_pixels = o.max_image_pixels;
    train_ = data::load_image_text(std::move(train), g_.text.tokenizer, load);
    check(!train_.streamed,
          "--task generate reads a manifest (train.jsonl); shard sets are not supported yet");
    if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl")) {
      test_ = data::load_image_text(o.data / "test.jsonl", g_.text.tokenizer, load);
      const int64_t n = std::min<int64_t>(test_.size(), o.eval_samples.value_or(64));
      test_.images = test_.images.slice(0, 0, n);
      test_.ids = test_.ids.slice(0, 0, n);
      test_.texts.resize(static_cast<size_t>(n));
    }
    // The image tower conditions nothing; the text tower learns unless it came from a trained CLIP.
    for (auto& p : g_.text.model->named_parameters())
      if (!p.key().starts_with("text.") || text_frozen_) p.value().requires_grad_(false);
    empty_ids_ = tokenize_batch(g_.text.tokenizer, {""}, g_.text.model->config.text.context_length);
    alphas_cumprod_ = torch::tensor(NoiseSchedule::make(g_.config.schedule).alphas_cumprod, torch::kDouble);
  }

  torch::nn::Module& trained() override { return *parts_; }
  torch::nn::Module& model() override { return *parts_; }
  int64_t train_size() const override { return train_.size(); }
  data::SkipLog skipped() const override { return train_.skip_log(); }

  std::any prepare(const std::vector<int64_t>& indices) const override {
    auto [pixels, ids] = train_.batch(indices);
    return std::make_tuple(pixels, ids, torch::tensor(indices, torch::kLong));
  }

  StepLoss loss(std::any& prepared, const StepContext& step) override {
    auto& [pixels, ids, indices] =
        std::any_cast<std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>&>(prepared);
    last_step_ = step.step;
    AutocastGuard autocast(step.precision);
    if (step.step < autoencoder_steps_) return autoencoder_loss(pixels, step);
    return diffusion_loss(ids, indices, step);
  }

  void train_mode() override {
    parts_->train();
    g_.text.model->eval();  // (its image tower's BatchNorm keeps its statistics; dropout has none)
  }

  json evaluate() override {
    if (test_.size() == 0) return nullptr;
    torch::NoGradGuard no_grad;
    g_.vae->eval();
    g_.unet->eval();
    const auto x = to_unit_range(test_.images);
    const auto latents = g_.vae->encode(x).mode();
    const auto recon = g_.vae->decode(latents);
    const double mse = (recon - x).square().mean().item<double>();
    json m{{"reconstruction_l1", (recon - x).abs().mean().item<double>()},
           {"psnr", 10 * std::log10(4.0 / std::max(mse, 1e-12))},
           {"n", test_.size()}};
    if (last_step_ >= autoencoder_steps_) m["denoising_loss"] = held_out_denoising_loss(latents);
    return m;
  }
  std::string summarize(const json& m) const override {
    std::string out = str_cat("autoencoder PSNR ", m["psnr"].get<double>(), " dB");
    if (m.contains("denoising_loss")) out += str_cat(", denoising loss ", m["denoising_loss"].get<double>());
    return out;
  }
  void save_model(const fs::path& dir) override { save_generator(dir, g_); }

 private:
  // Reconstruction through a sampled latent: mean L1 over pixels plus SD's KL weight (1e-6 of the summed
  // reconstruction loss, here per pixel).
  StepLoss autoencoder_loss(const torch::Tensor& pixels, const StepContext& step) {
    const auto x = step.place(to_unit_range(pixels));
    const DiagonalGaussian posterior = g_.vae->encode(x);
    const auto noise = draw(posterior.mean, step);
    const auto recon = g_.vae->decode(posterior.mean + torch::exp(0.5 * posterior.logvar) * noise);
    const auto l1 =
        step.group_mean((recon - x).abs().mean({1, 2, 3}).sum(), torch::tensor(double(x.size(0))));
    const auto kl = step.group_mean(posterior.kl().sum(), torch::tensor(double(x.size(0))));
    const double per_pixel = 1.0 / static_cast<double>(x[0].numel());
    return {l1 + 1e-6 * per_pixel * kl, {{"reconstruction_l1", l1.detach()}, {"kl", kl.detach()}}};
  }

  StepLoss diffusion_loss(torch::Tensor ids, const torch::Tensor& indices, const StepContext& step) {
    if (!latents_mean_.defined()) encode_training_images();
    const auto mean = latents_mean_.index_select(0, indices),
               logvar = latents_logvar_.index_select(0, indices);
    const int64_t B = mean.size(0), T = g_.config.schedule.steps;
    const double scale = g_.vae->config.scaling_factor;
    const auto z0 = step.place((mean + torch::exp(0.5 * logvar) * draw(mean, step)) * scale);
    const auto t = torch::randint(0, T, {step.group}, step.generator, torch::kLong).narrow(0, step.offset, B);
    const auto eps = step.place(draw(mean, step));
    const auto drop = torch::rand({step.group}, step.generator).narrow(0, step.offset, B) < kCaptionDropout;
    ids = torch::where(drop.unsqueeze(1), empty_ids_.expand_as(ids), ids);
    const auto [noisy, target] = noised(z0, eps, t);
    torch::Tensor context;
    {
      std::optional<torch::NoGradGuard> frozen;
      if (text_frozen_) frozen.emplace();
      context = g_.text.model->text(step.place(ids)).tokens;
    }
    const auto pred = g_.unet->forward(noisy, step.place(t), context);
    const auto per_example = (full_precision(pred) - target).square().mean({1, 2, 3});
    return {step.group_mean(per_example.sum(), torch::tensor(double(B))), {}};
  }

  // z0 noised to timesteps t ([B]) with eps, and what the UNet is to predict there (eps, or v).
  std::pair<torch::Tensor, torch::Tensor> noised(const torch::Tensor& z0, const torch::Tensor& eps,
                                                 const torch::Tensor& t) const {
    const auto abar = alphas_cumprod_.index_select(0, t).to(z0.scalar_type()).view({t.size(0), 1, 1, 1});
    const auto a = abar.sqrt().to(z0.device()), s = (1 - abar).sqrt().to(z0.device());
    return {a * z0 + s * eps, g_.config.prediction == Prediction::epsilon ? eps : a * eps - s * z0};
  }

  // Standard normal noise shaped like `like`, drawn for the whole micro-batch and cut to this process's rows,
  // so that --nproc draws what one process draws.
  torch::Tensor draw(const torch::Tensor& like, const StepContext& step) const {
    auto sizes = like.sizes().vec();
    const int64_t rows = sizes[0];
    sizes[0] = step.group;
    return torch::randn(sizes, step.generator, torch::kFloat)
        .narrow(0, step.offset, rows)
        .to(like.scalar_type());
  }

  // The autoencoder is frozen from here on: every training image's latent distribution, computed once, and
  // the scale that gives the latents unit variance.
  void encode_training_images() {
    torch::NoGradGuard no_grad;
    g_.vae->eval();
    for (auto& p : g_.vae->parameters()) {
      p.requires_grad_(false);
      p.mutable_grad() = torch::Tensor();  // zero_grad left zeros, and AdamW would still move a zero gradient
    }
    log_info("autoencoder trained: encoding ", train_.size(), " training images");
    std::vector<torch::Tensor> means, logvars;
    const auto dtype = g_.vae->post_quant_conv->weight.scalar_type();
    for (int64_t i = 0; i < train_.size(); i += kEncodeBatch) {
      std::vector<int64_t> rows;
      for (int64_t j = i; j < std::min(train_.size(), i + kEncodeBatch); ++j) rows.push_back(j);
      const DiagonalGaussian d = g_.vae->encode(to_unit_range(train_.batch(rows).first).to(dtype));
      means.push_back(d.mean.to(torch::kFloat));
      logvars.push_back(d.logvar.to(torch::kFloat));
    }
    latents_mean_ = torch::cat(means);
    latents_logvar_ = torch::cat(logvars);
    const double variance = latents_mean_.var().item<double>() + latents_logvar_.exp().mean().item<double>();
    g_.vae->config.scaling_factor = 1.0 / std::sqrt(std::max(variance, 1e-12));
    log_info("latent scale ", g_.vae->config.scaling_factor, " (unit variance; SD's is 0.18215)");
  }

  // The UNet's loss on the held-out images (their unscaled latents) at 8 fixed timesteps with fixed noise:
  // comparable across evaluations.
  double held_out_denoising_loss(const torch::Tensor& latents) {
    const auto context = g_.text.model->text(test_.ids).tokens;
    at::Generator generator = at::detail::createCPUGenerator(1234);
    const auto z0 = latents * g_.vae->config.scaling_factor;
    const int64_t T = g_.config.schedule.steps;
    double total = 0;
    for (int64_t k = 0; k < 8; ++k) {
      const auto t = torch::full({z0.size(0)}, (2 * k + 1) * T / 16, torch::kLong);
      const auto [noisy, target] = noised(z0, at::randn(z0.sizes(), generator, z0.options()), t);
      total += (g_.unet->forward(noisy, t, context) - target).square().mean().item<double>() / 8;
    }
    return total;
  }

  GeneratorBundle g_;
  GeneratorParts parts_;
  int64_t autoencoder_steps_;
  bool text_frozen_;
  data::ImageTextDataset train_, test_;
  torch::Tensor empty_ids_, latents_mean_, latents_logvar_, alphas_cumprod_;
  int64_t last_step_ = 0;
};

class GeneratorModel : public Model {
 public:
  GeneratorModel(const ModelFamily& family, GeneratorBundle g) : Model(family), g_(std::move(g)) {}

 protected:
  void* bundle_of(const std::type_info& type) override {
    return type == typeid(GeneratorBundle) ? &g_ : nullptr;
  }

 private:
  GeneratorBundle g_;
};

}  // namespace

ModelFamily generator_family() {
  ModelFamily f;
  f.model_type = "generator";
  f.task = "generate";
  f.summary =
      "text-to-image: latent diffusion in Stable Diffusion's structure (autoencoder, UNet, CLIP text)";
  f.presets = generator_preset_names();
  f.default_preset = "generator-tiny";
  f.describe = [](const std::string& name) {
    const ClipConfig clip = clip_preset("clip-tiny");
    const GeneratorSizes sizes = generator_preset(name, clip.text.width, 64);
    int64_t parameters = 0;
    for (const auto& p : AutoencoderKL(sizes.vae)->parameters()) parameters += p.numel();
    for (const auto& p : UNet(sizes.unet)->parameters()) parameters += p.numel();
    for (const auto& p : Clip(clip)->text->parameters()) parameters += p.numel();
    return PresetInfo{name,
                      parameters,
                      "64 px; autoencoder 32-64-64 to 16x16x4 latents; UNet 64-128-128 with cross-attention "
                      "to clip-tiny's text tower (or --init-from's)",
                      {{"vae", to_json(sizes.vae)}, {"unet", to_json(sizes.unet)}}};
  };
  f.holds = [](const fs::path& path) { return holds_generator(path); };
  f.open = [](const fs::path& path, const OpenOptions&) -> std::unique_ptr<Model> {
    return std::make_unique<GeneratorModel>(family_of_type("generator"), load_generator(path));
  };
  f.train_flags = {"init-from", "tokenizer", "vocab-size", "max-image-pixels", "autoencoder-steps"};
  f.train_defaults = {
      {"batch-size", 32},   {"lr", 2e-4},   {"weight-decay", 0.01}, {"precision", "auto"},
      {"eval-samples", 64}, {"epochs", 10}, {"vocab-size", 1024},   {"autoencoder-steps", 1500}};
  f.make_train_task = [](const TrainOptions& o, const fs::path& resume_from,
                         data::Manifest train) -> std::unique_ptr<TrainTask> {
    return std::make_unique<GeneratorTask>(o, resume_from, std::move(train));
  };
  return f;
}

}  // namespace mmlearn
