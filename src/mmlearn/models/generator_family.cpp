// The text-to-image generator's row in the registry (models/generator.h). `train --task generate` trains
// both parts of latent diffusion in one run: the autoencoder for the first --autoencoder-steps steps
// (reconstruction L1 and SD's small KL term), then — with the autoencoder frozen, every training image
// encoded once and the latents scaled to unit variance as SD's 0.18215 does — the UNet to predict the noise
// added at a random timestep, the caption dropped one time in ten for classifier-free guidance. The text
// tower is --init-from's CLIP or generator's (frozen, as SD keeps its text encoder, unless
// --train-text-encoder) or a new clip-tiny text tower learned alongside the UNet.
//
// An instruction editor (preset editor-tiny) trains the same way on (source, instruction, target) triplets,
// as InstructPix2Pix: the UNet denoises the target's latent beside the source's (unscaled mean), the
// instruction dropped 5 % of the time, the source 5 %, both 5 %. From --init-from a trained generator it
// starts with that generator's parts (the source's input channels at zero) and skips the autoencoder part.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/eval/edit_eval.h"
#include "mmlearn/eval/generator_eval.h"
#include "mmlearn/models/clip_import.h"
#include "mmlearn/models/generator.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/text/learn_tokenizer.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kCaptionDropout = 0.1;
constexpr double kConditionDropout = 0.05;  // an editor's: instruction, source, both
constexpr int64_t kEncodeBatch = 32;        // larger batches encode slower here (memory-bound activations)

// The parts one optimizer trains, registered under the directory's folder names, and the UNet's weight
// average beside them (what the model directory gets as its UNet).
// The step where the UNet starts to train (0: the autoencoder came trained, from --init-from's generator) is
// a buffer beside them, so that a resumed run knows it.
struct GeneratorPartsImpl : torch::nn::Module {
  GeneratorPartsImpl(GeneratorBundle& g, UNet ema, int64_t unet_from) {
    register_module("text_encoder", g.text.model);
    register_module("vae", g.vae);
    register_module("unet", g.unet);
    register_module("unet_ema", std::move(ema));
    unet_from_step = register_buffer("unet_from_step", torch::tensor(unet_from, torch::kLong));
  }
  torch::Tensor unet_from_step;
};
TORCH_MODULE(GeneratorParts);

// What the model directory holds: the average as its UNet.
struct GeneratorSavedImpl : torch::nn::Module {
  GeneratorSavedImpl(GeneratorBundle& g, UNet ema) {
    register_module("text_encoder", g.text.model);
    register_module("vae", g.vae);
    register_module("unet", std::move(ema));
  }
};
TORCH_MODULE(GeneratorSaved);

UNet copy_of(const UNet& unet) {
  UNet copy(unet->config);
  torch::NoGradGuard no_grad;
  const auto from = unet->named_parameters();
  for (auto& p : copy->named_parameters()) p.value().copy_(from[p.key()]);
  for (auto& p : copy->parameters()) p.requires_grad_(false);
  return copy;
}

// What a run trains: the checkpoint's generator, or a new one over --init-from's CLIP (or a new clip-tiny
// with a tokenizer given or learned from the captions).
GeneratorBundle new_generator(const TrainOptions& o, const data::Manifest& train) {
  if (o.train_text_encoder && o.init_from.empty())
    throw UsageError(
        "--train-text-encoder needs --init-from: without it the text tower is new and learns anyway");
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

bool from_generator(const TrainOptions& o) {
  return !o.init_from.empty() && config_model_type(o.init_from) == "generator";
}

// --init-from's trained generator, to train further or to make an instruction editor of.
GeneratorBundle generator_to_continue(const TrainOptions& o) {
  for (const char* flag : {"autoencoder-steps", "autoencoder-lr"})
    if (o.given.count(flag))
      throw UsageError(str_cat("--", flag, " does not apply with --init-from ", o.init_from.string(),
                               ": a trained generator's autoencoder is kept as it is"));
  GeneratorBundle g = load_generator(o.init_from);
  const bool editor = o.preset == "editor-tiny";
  if (edits_by_instruction(g) && !editor)
    throw UsageError(str_cat("--init-from ", o.init_from.string(),
                             " is an instruction editor; --preset editor-tiny trains it further"));
  if (editor && !edits_by_instruction(g)) g.unet = with_source_channels(g.unet);
  return g;
}

// A resumed run's directory holds the UNet's average; its training weights come from the checkpoint's
// training.safetensors (run_checkpoint.h), which overwrites the copy made here.
GeneratorBundle generator_to_train(const TrainOptions& o, const fs::path& resume_from,
                                   const data::Manifest& train, UNet& ema) {
  if (!resume_from.empty()) {
    GeneratorBundle g = load_generator(resume_from);
    ema = g.unet;
    g.unet = copy_of(ema);
    for (auto& p : g.unet->parameters()) p.requires_grad_(true);
    for (auto& p : ema->parameters()) p.requires_grad_(false);  // as a new run's: the optimizer skips it
    return g;
  }
  GeneratorBundle g = from_generator(o) ? generator_to_continue(o) : new_generator(o, train);
  if (o.noise_schedule) {
    g.config.schedule.kind = parse_schedule(*o.noise_schedule);
    if (g.config.schedule.kind == ScheduleKind::linear)  // DDPM's betas, as diffusers' "linear" defaults
      g.config.schedule.beta_start = 1e-4, g.config.schedule.beta_end = 0.02;
  }
  if (o.prediction) g.config.prediction = parse_prediction(*o.prediction);
  ema = copy_of(g.unet);
  return g;
}

class GeneratorTask : public TrainTask {
 public:
  GeneratorTask(const TrainOptions& o, const fs::path& resume_from, data::Manifest train)
      : g_(generator_to_train(o, resume_from, train, ema_)),
        parts_(g_, ema_, from_generator(o) ? 0 : o.autoencoder_steps.value()),
        saved_(g_, ema_),
        instruct_(edits_by_instruction(g_)),
        autoencoder_lr_(o.autoencoder_lr.value()),
        snr_gamma_(o.snr_gamma.value()),
        ema_decay_(o.ema_decay.value()),
        text_frozen_(!o.init_from.empty() && !o.train_text_encoder),
        samples_dir_(o.out / "samples") {
    data::ImageTextOptions load;
    load.image_size = g_.config.image_size;
    load.context_length = g_.text.model->config.text.context_length;
    if (o.max_image_pixels > 0) load.decode.max_pixels = o.max_image_pixels;
    train_ = data::load_image_text(std::move(train), g_.text.tokenizer, load);
    check(!train_.streamed,
          "--task generate reads a manifest (train.jsonl); shard sets are not supported yet");
    if (instruct_) train_targets_ = load_targets(train_, g_.text.tokenizer, load);
    if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl")) {
      test_ = data::load_image_text(o.data / "test.jsonl", g_.text.tokenizer, load);
      if (instruct_) test_targets_ = load_targets(test_, g_.text.tokenizer, load);
      const int64_t n = std::min<int64_t>(test_.size(), o.eval_samples.value_or(64));
      test_.images = test_.images.slice(0, 0, n);
      test_.ids = test_.ids.slice(0, 0, n);
      test_.texts.resize(static_cast<size_t>(n));
      if (instruct_) test_targets_ = test_targets_.slice(0, 0, n);
    }
    // The image tower conditions nothing; the text tower learns unless it came trained and is to stay so.
    for (auto& p : g_.text.model->named_parameters())
      if (!p.key().starts_with("text.") || text_frozen_) p.value().requires_grad_(false);
    empty_ids_ = tokenize_batch(g_.text.tokenizer, {""}, g_.text.model->config.text.context_length);
    alphas_cumprod_ = torch::tensor(NoiseSchedule::make(g_.config.schedule).alphas_cumprod, torch::kDouble);
  }

  torch::nn::Module& trained() override { return *parts_; }
  torch::nn::Module& model() override { return *saved_; }
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
    precision_ = step.precision;
    AutocastGuard autocast(step.precision);
    if (step.step < unet_from()) return autoencoder_loss(pixels, step);
    return diffusion_loss(ids, indices, step);
  }

  // The UNet's exponential moving average, as diffusers' EMAModel: decay min(--ema-decay, (1 + n) / (10 + n))
  // after the UNet's n-th update, so that a short run's average is not dominated by its first weights.
  void after_update() override {
    if (last_step_ < unet_from()) return;
    const double n = static_cast<double>(last_step_ - unet_from());
    const double decay = std::min(ema_decay_, (1 + n) / (10 + n));
    torch::NoGradGuard no_grad;
    auto average = ema_->parameters();
    const auto weights = g_.unet->parameters();
    for (size_t i = 0; i < average.size(); ++i) average[i].mul_(decay).add_(weights[i], 1 - decay);
  }

  // The autoencoder and then the UNet, each with its own warm-up and decay: the autoencoder ends annealed
  // (sharper pictures for the UNet to learn), and the UNet, which starts from scratch, warms up. The
  // autoencoder learns worse at the rates that train the UNet fastest (PSNR after 400 steps: 23.3 dB at 2e-4,
  // 23.9 at 1e-3, 21.4 at 2e-3), so it has its own.
  SchedulePart schedule_part(int64_t step, int64_t total, double lr) const override {
    if (total > 0 && total <= unet_from() && !warned_short_) {  // (the first plan that falls short)
      warned_short_ = true;
      log_warn("the run is planned for ", total, " steps, and the UNet starts after --autoencoder-steps ",
               unet_from(),
               ": only the autoencoder trains, and the model will draw noise. Lower "
               "--autoencoder-steps, or train the UNet on it next: train --task generate --init-from ",
               samples_dir_.parent_path().string());
    }
    if (step < unet_from())
      return {0, total > 0 ? std::min(unet_from(), total) : unet_from(), autoencoder_lr_};
    return {unet_from(), total, lr};
  }

  void train_mode() override {
    parts_->train();
    g_.text.model->eval();  // (its image tower's BatchNorm keeps its statistics; dropout has none)
    ema_->eval();
  }

  json evaluate() override {
    if (test_.size() == 0) return nullptr;
    torch::NoGradGuard no_grad;
    g_.vae->eval();
    g_.unet->eval();
    const auto x = to_unit_range(test_.images);
    const auto latents = g_.vae->encode(x).mode();  // an editor's sources
    const auto recon = g_.vae->decode(latents);
    const double mse = (recon - x).square().mean().item<double>();
    json m{{"reconstruction_l1", (recon - x).abs().mean().item<double>()},
           {"psnr", 10 * std::log10(4.0 / std::max(mse, 1e-12))},
           {"n", test_.size()}};
    if (last_step_ >= unet_from()) {
      m["denoising_loss"] =
          instruct_ ? held_out_denoising_loss(g_.vae->encode(to_unit_range(test_targets_)).mode(), latents)
                    : held_out_denoising_loss(latents, {});
      m["samples"] = draw_samples();
    }
    return m;
  }
  std::string summarize(const json& m) const override {
    std::string out = str_cat("autoencoder PSNR ", m["psnr"].get<double>(), " dB");
    if (m.contains("denoising_loss")) out += str_cat(", denoising loss ", m["denoising_loss"].get<double>());
    return out;
  }
  void save_model(const fs::path& dir) override {
    GeneratorBundle saved{g_.config, g_.text, g_.vae, ema_};
    save_generator(dir, saved);
  }

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
    const auto r = torch::rand({step.group}, step.generator).narrow(0, step.offset, B);
    // A generator drops the caption one time in ten; an editor the instruction, the source or both, each 5 %
    // of the time (InstructPix2Pix's split of one draw).
    const auto drop_text = instruct_ ? r < 2 * kConditionDropout : r < kCaptionDropout;
    ids = torch::where(drop_text.unsqueeze(1), empty_ids_.expand_as(ids), ids);
    auto [noisy, target] = noised(z0, eps, t);
    if (instruct_) {
      const auto keep_source = ~((r >= kConditionDropout) & (r < 3 * kConditionDropout));
      const auto source = source_latents_.index_select(0, indices) * keep_source.view({B, 1, 1, 1});
      noisy = torch::cat({noisy, step.place(source).to(noisy.scalar_type())}, 1);
    }
    torch::Tensor context;
    {
      std::optional<torch::NoGradGuard> frozen;
      if (text_frozen_) frozen.emplace();
      context = g_.text.model->text(step.place(ids)).tokens;
    }
    const auto pred = g_.unet->forward(noisy, step.place(t), context);
    auto per_example = (full_precision(pred) - target).square().mean({1, 2, 3});
    if (snr_gamma_ > 0) per_example = per_example * min_snr_weight(t).to(per_example);
    return {step.group_mean(per_example.sum(), torch::tensor(double(B))), {}};
  }

  // z0 noised to timesteps t ([B]) with eps, and what the UNet is to predict there (eps, or v).
  std::pair<torch::Tensor, torch::Tensor> noised(const torch::Tensor& z0, const torch::Tensor& eps,
                                                 const torch::Tensor& t) const {
    const auto abar = alphas_cumprod_.index_select(0, t).to(z0.scalar_type()).view({t.size(0), 1, 1, 1});
    const auto a = abar.sqrt().to(z0.device()), s = (1 - abar).sqrt().to(z0.device());
    return {a * z0 + s * eps, g_.config.prediction == Prediction::epsilon ? eps : a * eps - s * z0};
  }

  // What the model draws now for the first held-out captions (the same prompts and seed at every evaluation):
  // a contact sheet under the run directory, named in the metrics for the report.
  // An editor's sheet: the sources above what it made of them.
  std::string draw_samples() {
    const int64_t n = std::min<int64_t>(8, test_.size());
    const std::vector<std::string> prompts(test_.texts.begin(), test_.texts.begin() + n);
    GeneratorBundle average{g_.config, g_.text, g_.vae, ema_};
    const GenerateOptions options{
        .sampler = g_.config.sampler,
        .steps = g_.config.sampling_steps,
        .guidance = g_.config.guidance,
        .seed = 0,
        // bf16 when training is: sampling is several times faster in it
        .precision = precision_ == Precision::bf16 ? Precision::bf16 : Precision::fp32};
    const auto sources = test_.images.slice(0, 0, n);
    const auto images = instruct_
                            ? torch::cat({sources, edit_by_instruction(average, sources, prompts,
                                                                       {options, g_.config.image_guidance})})
                            : generate(average, prompts, options);
    char name[32];
    std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(last_step_ + 1));
    const fs::path dir = samples_dir_ / name;
    fs::remove_all(dir);  // a resumed run draws this step again
    write_generated(dir, images, n);
    write_file_atomic(dir / "prompts.json", json(prompts).dump(1) + "\n");
    return (fs::path("samples") / name / "sheet.png").string();
  }

  // Min-SNR-γ (Hang et al., 2023): the loss at timestep t weighted by min(SNR, γ) / SNR for ε (divided by
  // SNR + 1 for v), so that the many easy low-noise steps stop dominating the gradient.
  torch::Tensor min_snr_weight(const torch::Tensor& t) const {
    const auto abar = alphas_cumprod_.index_select(0, t);
    const auto snr = abar / (1 - abar);
    return snr.clamp_max(snr_gamma_) / (g_.config.prediction == Prediction::epsilon ? snr : snr + 1);
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
    log_info(unet_from() > 0 ? "autoencoder trained" : "autoencoder kept from --init-from", ": encoding ",
             train_.size(), instruct_ ? " training triplets" : " training images");
    const auto dtype = g_.vae->post_quant_conv->weight.scalar_type();
    // The targets an editor learns to draw (a generator's images), and an editor's sources.
    auto encode = [&](const std::function<torch::Tensor(const std::vector<int64_t>&)>& pixels, bool logvar) {
      std::vector<torch::Tensor> means, logvars;
      for (int64_t i = 0; i < train_.size(); i += kEncodeBatch) {
        std::vector<int64_t> rows;
        for (int64_t j = i; j < std::min(train_.size(), i + kEncodeBatch); ++j) rows.push_back(j);
        const DiagonalGaussian d = g_.vae->encode(to_unit_range(pixels(rows)).to(dtype));
        means.push_back(d.mean.to(torch::kFloat));
        if (logvar) logvars.push_back(d.logvar.to(torch::kFloat));
      }
      return std::make_pair(torch::cat(means), logvar ? torch::cat(logvars) : torch::Tensor());
    };
    const auto sources = [&](const std::vector<int64_t>& rows) { return train_.batch(rows).first; };
    std::tie(latents_mean_, latents_logvar_) =
        instruct_ ? encode(
                        [&](const std::vector<int64_t>& rows) {
                          return train_targets_.index_select(0, torch::tensor(rows, torch::kLong));
                        },
                        true)
                  : encode(sources, true);
    if (instruct_) source_latents_ = encode(sources, false).first;
    if (unet_from() == 0) return;  // a trained generator's scale, which its UNet learned with, stays
    const double variance = latents_mean_.var().item<double>() + latents_logvar_.exp().mean().item<double>();
    g_.vae->config.scaling_factor = 1.0 / std::sqrt(std::max(variance, 1e-12));
    log_info("latent scale ", g_.vae->config.scaling_factor, " (unit variance; SD's is 0.18215)");
  }

  // The UNet's loss on the held-out images (their unscaled latents) at 8 fixed timesteps with fixed noise:
  // comparable across evaluations.
  double held_out_denoising_loss(const torch::Tensor& latents, const torch::Tensor& sources) {
    const auto context = g_.text.model->text(test_.ids).tokens;
    at::Generator generator = at::detail::createCPUGenerator(1234);
    const auto z0 = latents * g_.vae->config.scaling_factor;
    const int64_t T = g_.config.schedule.steps;
    double total = 0;
    for (int64_t k = 0; k < 8; ++k) {
      const auto t = torch::full({z0.size(0)}, (2 * k + 1) * T / 16, torch::kLong);
      auto [noisy, target] = noised(z0, at::randn(z0.sizes(), generator, z0.options()), t);
      if (sources.defined()) noisy = torch::cat({noisy, sources}, 1);
      total += (ema_->forward(noisy, t, context) - target).square().mean().item<double>() / 8;
    }
    return total;
  }

  UNet ema_{nullptr};  // (before g_: generator_to_train sets it)
  int64_t unet_from() const { return parts_->unet_from_step.item<int64_t>(); }

  GeneratorBundle g_;
  GeneratorParts parts_;
  GeneratorSaved saved_;
  bool instruct_;  // an instruction editor: triplets, and the source latent beside the noisy one
  double autoencoder_lr_, snr_gamma_, ema_decay_;
  bool text_frozen_;
  fs::path samples_dir_;                        // (in the run directory)
  data::ImageTextDataset train_, test_;         // an editor's: sources and instructions
  torch::Tensor train_targets_, test_targets_;  // an editor's targets (uint8), row for row
  torch::Tensor empty_ids_, latents_mean_, latents_logvar_, source_latents_, alphas_cumprod_;
  int64_t last_step_ = 0;
  mutable bool warned_short_ = false;
  Precision precision_ = Precision::fp32;  // the steps' (what the samples are drawn in)
};

// Whether two CLIPs have the same text tower (a judge must not be the generator's own text encoder).
bool same_text_tower(Clip& a, Clip& b) {
  const auto theirs = b->named_parameters();
  for (const auto& p : a->named_parameters()) {
    if (!p.key().starts_with("text.")) continue;
    const auto* other = theirs.find(p.key());
    if (!other || other->sizes() != p.value().sizes() || !other->equal(p.value())) return false;
  }
  return true;
}

class GeneratorModel : public Model {
 public:
  GeneratorModel(const ModelFamily& family, GeneratorBundle g) : Model(family), g_(std::move(g)) {}

  std::set<std::string> eval_flags() const override {
    return {"judge", "samples", "sampler", "steps",    "guidance",      "eta",
            "seed",  "limit",   "classes", "strength", "image-guidance"};
  }
  // Scenes (captions) judge what a generator draws; edit triplets (records with "target") judge its edits:
  // an instruction editor's, or a text-to-image generator's by SDEdit.
  json evaluate(const EvalRequest& r) override {
    const bool instruct = edits_by_instruction(g_);
    if (r.judge.empty())
      throw UsageError(
          "--judge is required: a CLIP trained apart from this generator, which reads the pictures");
    const fs::path manifest = data::find_manifest(r.data, "test");
    const data::Manifest records = data::read_manifest(manifest);
    const bool triplets = !records.records.empty() && records.records[0].json.contains("target");
    if (instruct && !triplets)
      throw UsageError(str_cat("--data ", r.data.string(),
                               ": an instruction editor is judged on edit triplets (records with \"target\": "
                               "mmlearn data shapes --task edit)"));
    if (r.strength && !instruct && !triplets)
      throw UsageError("--strength applies to judging SDEdit edits (--data of edit triplets)");
    check_edit_flags(g_, r.strength.has_value(), r.image_guidance.has_value());
    const fs::path classes = r.classes.empty() ? manifest.parent_path() / "classes.json" : r.classes;
    if (!r.samples.empty() && fs::exists(r.samples) && !fs::is_empty(r.samples))
      throw UsageError(str_cat("--samples ", r.samples.string(), " is not empty: choose a new folder"));
    auto judge = open_model(r.judge);
    ClipBundle* clip = judge->bundle<ClipBundle>();
    if (!clip)
      throw UsageError(str_cat("--judge ", r.judge.string(), " is a ", judge->family().model_type,
                               " model; the judge must be a CLIP (train --task contrastive)"));
    if (same_text_tower(g_.text.model, clip->model))
      throw UsageError(
          str_cat("--judge ", r.judge.string(),
                  " is this generator's own text encoder: judge with a CLIP trained apart from it"));
    const GenerateOptions drawing{.sampler = r.sampler ? parse_sampler(*r.sampler) : g_.config.sampler,
                                  .steps = r.steps.value_or(g_.config.sampling_steps),
                                  .guidance = r.guidance.value_or(g_.config.guidance),
                                  .eta = r.eta.value_or(0),
                                  .seed = r.seed,
                                  .precision = r.precision};
    if (r.eta) check_eta_applies(drawing.sampler);
    const double strength = r.strength.value_or(0.6);
    if (triplets && !instruct) check_strength_leaves_a_step(strength, drawing.steps);
    std::unique_ptr<Progress> bar;
    auto progress = [&](int64_t done, int64_t total) {
      if (!bar) bar = std::make_unique<Progress>(triplets ? "edit" : "generate", total, "img");
      bar->update(done);
    };
    json metrics = triplets ? evaluate_edits(g_, *clip, manifest, classes,
                                             {.generate = drawing,
                                              .strength = strength,
                                              .image_guidance = r.image_guidance,
                                              .limit = r.limit,
                                              .samples = r.samples,
                                              .precision = r.precision,
                                              .progress = progress})
                            : evaluate_generator(g_, *clip, manifest, classes,
                                                 {.generate = drawing,
                                                  .limit = r.limit,
                                                  .samples = r.samples,
                                                  .precision = r.precision,
                                                  .progress = progress});
    if (bar) bar->finish();
    return metrics;
  }
  std::string format_metrics(const json& m) const override {
    auto pct = [](const json& v) { return str_cat(std::round(1000 * v.get<double>()) / 10, "%"); };
    if (m.contains("edit")) {
      const std::string method = m["edit"].contains("instruct") ? "instruct" : "sdedit";
      std::string out =
          str_cat(method == "instruct" ? "edits by instruction" : "SDEdit edits", " (", m["n"].get<int64_t>(),
                  " triplets, ", m["sampler"].get<std::string>(), ", ", m["steps"].get<int64_t>(),
                  " steps): change made and the rest kept ", pct(m["edit"][method]), "\n");
      for (const auto& [kind, v] : m["by_kind"].items())
        out += str_cat("  ", kind, " ", pct(v["right"]), " of ", v["n"].get<int64_t>(), "\n");
      return out + str_cat("the judge on the target pictures: ", pct(m["judge_on_real"]),
                           "; on the unchanged sources: ", pct(m["unchanged"]), "\n");
    }
    auto lines = [&](const json& s) {
      std::string out = str_cat("single (", s["single"]["n"].get<int64_t>(), " prompts):");
      for (const char* a : {"color", "shape", "size"})
        if (s["single"].contains(a)) out += str_cat("  ", a, " ", pct(s["single"][a]));
      out += str_cat("  one object found ", pct(s["single"]["one_object"]));
      out += str_cat("\npairs (", s["pairs"]["n"].get<int64_t>(), " prompts):  both objects ",
                     pct(s["pairs"]["both_objects"]), "  relation ", pct(s["pairs"]["relation"]),
                     "  two objects found ", pct(s["pairs"]["two_objects"]), "\nCLIP score ",
                     std::round(100 * s["clip_score"].get<double>()) / 100, "\n");
      return out;
    };
    return str_cat("generated (", m["sampler"].get<std::string>(), ", ", m["steps"].get<int64_t>(),
                   " steps, guidance ", m["guidance"].get<double>(), "):\n", lines(m),
                   "Frechet distance to the held-out images: ",
                   m["frechet"].is_null() ? std::string("-") : str_cat(m["frechet"].get<double>()),
                   "\nthe judge on the real held-out images:\n", lines(m["judge_on_real"]),
                   "the judge on them through the autoencoder and back:\n", lines(m["judge_on_autoencoded"]));
  }

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
      "text-to-image and instruction editing: latent diffusion in Stable Diffusion's structure (autoencoder, "
      "UNet, "
      "CLIP text)";
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
                      str_cat(name == "editor-tiny" ? "an instruction editor (InstructPix2Pix): " : "",
                              "64 px; autoencoder 32-64-64 to 16x16x4 latents; UNet 64-128-128",
                              name == "editor-tiny" ? " taking the source latent too," : "",
                              " with cross-attention to clip-tiny's text tower (or --init-from's)"),
                      {{"vae", to_json(sizes.vae)}, {"unet", to_json(sizes.unet)}}};
  };
  f.holds = [](const fs::path& path) { return holds_generator(path); };
  f.open = [](const fs::path& path, const OpenOptions&) -> std::unique_ptr<Model> {
    return std::make_unique<GeneratorModel>(family_of_type("generator"), load_generator(path));
  };
  f.train_flags = {"init-from",         "tokenizer",      "vocab-size",        "max-image-pixels",
                   "autoencoder-steps", "autoencoder-lr", "noise-schedule",    "prediction",
                   "snr-gamma",         "ema-decay",      "train-text-encoder"};
  f.train_defaults = {
      {"batch-size", 32},       {"lr", 2e-3},       {"weight-decay", 0.01}, {"precision", "auto"},
      {"eval-samples", 64},     {"epochs", 10},     {"vocab-size", 1024},   {"autoencoder-steps", 800},
      {"autoencoder-lr", 1e-3}, {"snr-gamma", 5.0}, {"ema-decay", 0.9999}};
  f.make_train_task = [](const TrainOptions& o, const fs::path& resume_from,
                         data::Manifest train) -> std::unique_ptr<TrainTask> {
    return std::make_unique<GeneratorTask>(o, resume_from, std::move(train));
  };
  return f;
}

}  // namespace mmlearn
