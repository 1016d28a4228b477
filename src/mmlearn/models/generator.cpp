#include "mmlearn/models/generator.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/models/weight_files.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// diffusers' names for what the scheduler config holds.
const std::vector<std::pair<ScheduleKind, std::string>> kScheduleNames = {
    {ScheduleKind::linear, "linear"},
    {ScheduleKind::scaled_linear, "scaled_linear"},
    {ScheduleKind::cosine, "squaredcos_cap_v2"}};
const std::vector<std::pair<Prediction, std::string>> kPredictionNames = {{Prediction::epsilon, "epsilon"},
                                                                          {Prediction::v, "v_prediction"}};

template <class E>
std::string name_of(const std::vector<std::pair<E, std::string>>& names, E value) {
  for (const auto& [v, name] : names)
    if (v == value) return name;
  throw Error("unnamed value");
}

template <class E>
E value_of(const std::vector<std::pair<E, std::string>>& names, const json& j, const char* key, E fallback,
           const std::string& where) {
  if (!j.contains(key)) return fallback;
  const std::string name = string_value(j, key);
  std::vector<std::string> known;
  for (const auto& [v, n] : names) {
    if (n == name) return v;
    known.push_back(n);
  }
  throw Error(str_cat(where, ": ", key, " ", j[key].dump(), " is not one of ", join(known, ", ")));
}

json scheduler_json(const GeneratorConfig& c) {
  return {{"_class_name", "DDPMScheduler"},
          {"num_train_timesteps", c.schedule.steps},
          {"beta_schedule", name_of(kScheduleNames, c.schedule.kind)},
          {"beta_start", c.schedule.beta_start},
          {"beta_end", c.schedule.beta_end},
          {"prediction_type", name_of(kPredictionNames, c.prediction)}};
}

void read_scheduler(const json& j, GeneratorConfig& c, const std::string& where) {
  check(j.is_object(), where, ": expected a JSON object (a scheduler config)");
  read_field(j, "num_train_timesteps", c.schedule.steps, where);
  read_field(j, "beta_start", c.schedule.beta_start, where);
  read_field(j, "beta_end", c.schedule.beta_end, where);
  c.schedule.kind = value_of(kScheduleNames, j, "beta_schedule", c.schedule.kind, where);
  c.prediction = value_of(kPredictionNames, j, "prediction_type", c.prediction, where);
  check(c.schedule.steps >= 2 && c.schedule.steps <= 100000, where, ": num_train_timesteps ",
        c.schedule.steps, " is out of range (2 to 100000)");
  check(c.schedule.beta_start > 0 && c.schedule.beta_end < 1 && c.schedule.beta_start <= c.schedule.beta_end,
        where, ": beta_start and beta_end must satisfy 0 < beta_start <= beta_end < 1");
}

}  // namespace

json to_json(const GeneratorConfig& c) {
  return {{"model_type", "generator"},
          {"image_size", c.image_size},
          {"sampler", sampler_name(c.sampler)},
          {"sampling_steps", c.sampling_steps},
          {"guidance", c.guidance},
          {"image_guidance", c.image_guidance}};
}

GeneratorConfig generator_config_from_json(const json& j, const std::string& where) {
  check(j.is_object() && string_value(j, "model_type") == "generator", where,
        ": not a generator's config (model_type \"generator\")");
  GeneratorConfig c;
  read_field(j, "image_size", c.image_size, where);
  read_field(j, "sampling_steps", c.sampling_steps, where);
  read_field(j, "guidance", c.guidance, where);
  read_field(j, "image_guidance", c.image_guidance, where);
  c.sampler = value_of(sampler_names(), j, "sampler", c.sampler, where);
  check(c.image_size >= 8 && c.image_size <= 2048, where, ": image_size ", c.image_size,
        " is out of range (8 to 2048)");
  check(c.sampling_steps >= 1 && c.sampling_steps <= 10000, where, ": sampling_steps ", c.sampling_steps,
        " is out of range (1 to 10000)");
  check(std::isfinite(c.guidance) && c.guidance >= 0 && c.guidance <= 100, where, ": guidance ", c.guidance,
        " is out of range (0 to 100)");
  check(std::isfinite(c.image_guidance) && c.image_guidance >= 0 && c.image_guidance <= 100, where,
        ": image_guidance ", c.image_guidance, " is out of range (0 to 100)");
  return c;
}

std::vector<std::string> generator_preset_names() { return {"generator-tiny", "editor-tiny"}; }

GeneratorSizes generator_preset(const std::string& preset, int64_t text_width, int64_t image_size) {
  check(preset == "generator-tiny" || preset == "editor-tiny", "unknown generator preset \"", preset,
        "\" (expected generator-tiny or editor-tiny)");
  AutoencoderKLConfig vae{.block_out_channels = {32, 64, 64}, .layers_per_block = 1, .norm_num_groups = 16};
  vae.sample_size = image_size;
  check(image_size % vae.downsampling() == 0, "image size ", image_size, " must be a multiple of ",
        vae.downsampling(), " (the autoencoder's downsampling)");
  UNetConfig unet{.in_channels = (preset == "editor-tiny" ? 2 : 1) * vae.latent_channels,
                  .out_channels = vae.latent_channels,
                  .block_out_channels = {64, 128, 128},
                  .cross_attention = {true, true, false},
                  .heads = {4, 4, 4},
                  .layers_per_block = 1,
                  .norm_num_groups = 16,
                  .cross_attention_dim = text_width,
                  .sample_size = image_size / vae.downsampling()};
  return {vae, unet};
}

GeneratorBundle make_generator(const std::string& preset, ClipBundle text, int64_t image_size) {
  const GeneratorSizes sizes = generator_preset(preset, text.model->config.text.width, image_size);
  GeneratorConfig config;
  config.image_size = image_size;
  return {config, std::move(text), AutoencoderKL(sizes.vae), UNet(sizes.unet)};
}

void save_generator(const fs::path& dir, GeneratorBundle& g) {
  fs::create_directories(dir / "scheduler");
  save_clip(dir / "text_encoder", g.text.model, g.text.tokenizer);
  save_autoencoder_kl(g.vae, dir / "vae");
  save_unet(g.unet, dir / "unet");
  write_file_atomic(dir / "scheduler" / "scheduler_config.json", scheduler_json(g.config).dump(2) + "\n");
  write_file_atomic(dir / "config.json", to_json(g.config).dump(2) + "\n");  // last: the directory is whole
}

bool edits_by_instruction(const GeneratorBundle& g) {
  return g.unet->config.in_channels == 2 * g.vae->config.latent_channels;
}

void check_edit_flags(const GeneratorBundle& g, bool strength_given, bool image_guidance_given) {
  const bool instruct = edits_by_instruction(g);
  if (instruct && strength_given)
    throw UsageError("--strength is SDEdit's; this model edits by instruction (leave --strength out)");
  if (!instruct && image_guidance_given)
    throw UsageError(
        "--image-guidance is an instruction editor's; this generator edits by SDEdit (--strength)");
}

void check_strength_leaves_a_step(double strength, int64_t steps) {
  if (static_cast<int64_t>(strength * static_cast<double>(steps)) < 1)
    throw UsageError(str_cat("--strength ", strength, " x ", steps,
                             " steps leaves no step to denoise: raise --strength or --steps"));
}

UNet with_source_channels(const UNet& unet) {
  UNetConfig config = unet->config;
  config.in_channels = 2 * unet->config.out_channels;
  UNet wider(config);
  torch::NoGradGuard no_grad;
  const auto from = unet->named_parameters();
  for (auto& p : wider->named_parameters()) {
    if (p.key() == "conv_in.weight") {
      p.value().zero_();
      p.value().narrow(1, 0, unet->config.in_channels).copy_(from[p.key()]);
    } else {
      p.value().copy_(from[p.key()]);
    }
  }
  return wider;
}

bool holds_generator(const fs::path& dir) { return config_model_type(dir) == "generator"; }

GeneratorBundle load_generator(const fs::path& dir) {
  const std::string where = (dir / "config.json").string();
  GeneratorConfig config = generator_config_from_json(read_json_file(dir / "config.json"), where);
  const fs::path scheduler = dir / "scheduler" / "scheduler_config.json";
  read_scheduler(read_json_file(scheduler), config, scheduler.string());
  GeneratorBundle g{config, load_clip(dir / "text_encoder"), load_autoencoder_kl(dir / "vae"),
                    load_unet(dir / "unet")};
  const auto& u = g.unet->config;
  check(u.cross_attention_dim == g.text.model->config.text.width, dir.string(), ": the UNet attends to ",
        u.cross_attention_dim, "-wide tokens, but the text encoder's are ", g.text.model->config.text.width);
  const int64_t latent = g.vae->config.latent_channels;
  check((u.in_channels == latent || u.in_channels == 2 * latent) && u.out_channels == latent, dir.string(),
        ": the UNet takes ", u.in_channels, " channels and gives ", u.out_channels,
        "; the autoencoder's latents have ", latent, " (an editor's UNet takes twice that)");
  check(g.config.image_size % g.vae->config.downsampling() == 0, where, ": image_size ", g.config.image_size,
        " is not a multiple of the autoencoder's downsampling ", g.vae->config.downsampling());
  g.text.model->eval();
  g.vae->eval();
  g.unet->eval();
  return g;
}

torch::Tensor encode_prompts(GeneratorBundle& g, const std::vector<std::string>& prompts) {
  const auto ids = tokenize_batch(g.text.tokenizer, prompts, g.text.model->config.text.context_length);
  return g.text.model->text(ids.to(g.text.model->logit_scale.device())).tokens;
}

torch::Tensor to_unit_range(const torch::Tensor& images_u8) {
  return images_u8.to(torch::kFloat) / 127.5 - 1.0;
}

torch::Tensor to_pixels(const torch::Tensor& images) {
  return ((images.to(torch::kFloat) + 1.0) * 127.5).round().clamp(0, 255).to(torch::kUInt8);
}

namespace {

void check_drawing(const GeneratorBundle& g, const std::vector<std::string>& prompts,
                   const GenerateOptions& o) {
  check(!prompts.empty(), "generate: no prompts");
  for (const auto& p : prompts) check(!p.empty(), "generate: an empty prompt (say what to draw)");
  check(o.steps >= 1 && o.steps <= g.config.schedule.steps, "--steps ", o.steps, " must be between 1 and ",
        g.config.schedule.steps);
  check(std::isfinite(o.guidance) && o.guidance >= 0, "--guidance ", o.guidance, " must be finite and >= 0");
}

// The UNet's prediction for x at t, mixed over classifier-free guidance's conditions. A text-to-image
// generator: prompt and empty prompt. An editor (`sources`: the source latents): InstructPix2Pix's three.
Denoiser guided_denoiser(GeneratorBundle& g, const std::vector<std::string>& prompts,
                         const torch::Tensor& sources, double guidance, double image_guidance,
                         const std::function<void()>& stepped) {
  const auto text = encode_prompts(g, prompts),
             empty = encode_prompts(g, std::vector<std::string>(prompts.size(), ""));
  if (sources.defined()) {
    const auto context = torch::cat({text, empty, empty});
    const auto images = torch::cat({sources, sources, torch::zeros_like(sources)});
    return [&g, context, images, guidance, image_guidance, stepped](const torch::Tensor& x, int64_t t) {
      const auto input = torch::cat({torch::cat({x, x, x}), images}, 1);
      const auto out = g.unet->forward(input, torch::full({input.size(0)}, t, torch::kLong), context)
                           .to(torch::kFloat)
                           .chunk(3);
      if (stepped) stepped();
      return out[2] + guidance * (out[0] - out[1]) + image_guidance * (out[1] - out[2]);
    };
  }
  const bool guided = guidance != 1.0;
  const auto context = guided ? torch::cat({text, empty}) : text;
  return [&g, context, guided, guidance, stepped](const torch::Tensor& x, int64_t t) {
    const auto input = guided ? torch::cat({x, x}) : x;
    const auto out =
        g.unet->forward(input, torch::full({input.size(0)}, t, torch::kLong), context).to(torch::kFloat);
    if (stepped) stepped();
    if (!guided) return out;
    const auto halves = out.chunk(2);
    return halves[1] + guidance * (halves[0] - halves[1]);
  };
}

// From latents x noised to the run's timestep `skip` to clean latents, then pixels.
torch::Tensor denoise(GeneratorBundle& g, const Denoiser& denoiser, torch::Tensor x, const GenerateOptions& o,
                      int64_t skip, at::Generator& generator) {
  torch::Tensor latents;
  {
    AutocastGuard autocast(o.precision);
    latents = sample(NoiseSchedule::make(g.config.schedule), denoiser, x,
                     {.sampler = o.sampler,
                      .steps = o.steps,
                      .prediction = g.config.prediction,
                      .eta = o.eta,
                      .skip = skip},
                     generator);
  }
  return to_pixels(g.vae->decode(latents / g.vae->config.scaling_factor));
}

std::function<void()> counter(const GenerateOptions& o, int64_t steps) {
  if (!o.progress) return {};
  auto done = std::make_shared<int64_t>(0);
  return [progress = o.progress, done, steps] { progress(++*done, steps); };
}

torch::Tensor noise_for(const GeneratorBundle& g, int64_t n, at::Generator& generator) {
  const int64_t side = g.config.image_size / g.vae->config.downsampling();
  return at::randn({n, g.vae->config.latent_channels, side, side}, generator, torch::kFloat);
}

void check_sources(const GeneratorBundle& g, const torch::Tensor& sources_u8, size_t prompts) {
  const int64_t S = g.config.image_size;
  check(sources_u8.dim() == 4 && sources_u8.size(0) == static_cast<int64_t>(prompts) &&
            sources_u8.size(1) == 3 && sources_u8.size(2) == S && sources_u8.size(3) == S,
        "edit: expected one ", S, "x", S, " RGB image a prompt");
}

}  // namespace

torch::Tensor generate(GeneratorBundle& g, const std::vector<std::string>& prompts,
                       const GenerateOptions& o) {
  check_drawing(g, prompts, o);
  check(!edits_by_instruction(g), "this generator edits pictures by instruction: use edit with a picture");
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(o.seed);
  const auto noise = noise_for(g, static_cast<int64_t>(prompts.size()), generator);
  return denoise(g, guided_denoiser(g, prompts, {}, o.guidance, 1, counter(o, o.steps)), noise, o, 0,
                 generator);
}

torch::Tensor source_latents(GeneratorBundle& g, const torch::Tensor& sources_u8) {
  torch::NoGradGuard no_grad;
  return g.vae->encode(to_unit_range(sources_u8)).mean;
}

torch::Tensor edit_by_instruction(GeneratorBundle& g, const torch::Tensor& sources_u8,
                                  const std::vector<std::string>& instructions, const InstructOptions& o) {
  check_drawing(g, instructions, o.generate);
  check(edits_by_instruction(g), "this generator draws from text alone: it edits by SDEdit (a --strength)");
  check_sources(g, sources_u8, instructions.size());
  check(std::isfinite(o.image_guidance) && o.image_guidance >= 0, "--image-guidance ", o.image_guidance,
        " must be finite and >= 0");
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(o.generate.seed);
  const auto noise = noise_for(g, static_cast<int64_t>(instructions.size()), generator);
  const auto denoiser = guided_denoiser(g, instructions, source_latents(g, sources_u8), o.generate.guidance,
                                        o.image_guidance, counter(o.generate, o.generate.steps));
  return denoise(g, denoiser, noise, o.generate, 0, generator);
}

torch::Tensor edit(GeneratorBundle& g, const torch::Tensor& sources_u8,
                   const std::vector<std::string>& prompts, const EditOptions& o) {
  check_drawing(g, prompts, o.generate);
  check(!edits_by_instruction(g), "this generator edits by instruction: SDEdit's --strength does not apply");
  check_sources(g, sources_u8, prompts.size());
  check(std::isfinite(o.strength) && o.strength > 0 && o.strength <= 1, "--strength ", o.strength,
        " must be in (0, 1]");
  const int64_t noised_steps =
      std::min(o.generate.steps, static_cast<int64_t>(o.strength * o.generate.steps));
  check(noised_steps >= 1, "--strength ", o.strength, " x --steps ", o.generate.steps,
        " leaves no step to denoise: raise either");
  torch::NoGradGuard no_grad;
  const int64_t skip = o.generate.steps - noised_steps;
  const int64_t t = sampling_timesteps(g.config.schedule.steps, o.generate.steps)[static_cast<size_t>(skip)];
  const double abar = NoiseSchedule::make(g.config.schedule).alphas_cumprod[static_cast<size_t>(t)];
  at::Generator generator = at::detail::createCPUGenerator(o.generate.seed);
  const auto z0 = g.vae->encode(to_unit_range(sources_u8)).mean * g.vae->config.scaling_factor;
  const auto noise = at::randn(z0.sizes(), generator, torch::kFloat);
  const auto denoiser =
      guided_denoiser(g, prompts, {}, o.generate.guidance, 1, counter(o.generate, o.generate.steps - skip));
  return denoise(g, denoiser, std::sqrt(abar) * z0 + std::sqrt(1 - abar) * noise, o.generate, skip,
                 generator);
}

namespace {

data::Image to_image(const torch::Tensor& chw) {
  const auto hwc = chw.permute({1, 2, 0}).contiguous();
  data::Image image{static_cast<int>(chw.size(2)), static_cast<int>(chw.size(1)), {}};
  image.rgb.assign(hwc.data_ptr<uint8_t>(), hwc.data_ptr<uint8_t>() + hwc.numel());
  return image;
}

}  // namespace

std::vector<fs::path> write_generated(const fs::path& dir, const torch::Tensor& images, int64_t columns) {
  check(images.dim() == 4 && images.size(1) == 3 && images.scalar_type() == torch::kUInt8,
        "write_generated: expected uint8 images [N, 3, S, S]");
  fs::create_directories(dir);
  const int64_t n = images.size(0), S = images.size(2), W = images.size(3), gap = 2;
  const int64_t cols = std::min(columns, n), rows = (n + cols - 1) / cols;
  auto sheet = torch::full({3, rows * (S + gap) + gap, cols * (W + gap) + gap}, 255, torch::kUInt8);
  std::vector<fs::path> files;
  for (int64_t i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "%03lld.png", static_cast<long long>(i));
    files.push_back(dir / name);
    data::write_png(files.back(), to_image(images[i]));
    const int64_t y = gap + (i / cols) * (S + gap), x = gap + (i % cols) * (W + gap);
    sheet.narrow(1, y, S).narrow(2, x, W).copy_(images[i]);
  }
  data::write_png(dir / "sheet.png", to_image(sheet));
  return files;
}

}  // namespace mmlearn
