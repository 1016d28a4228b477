// Text-to-image generation by latent diffusion, in Stable Diffusion's structure: a CLIP text tower turns the
// prompt into tokens, the UNet (diffusion/unet.h) removes noise from a latent step by step while attending
// to them, and the autoencoder (diffusion/autoencoder_kl.h) turns the latent into pixels. Classifier-free
// guidance mixes the UNet's prediction with the prompt and without it (the empty prompt, which training
// shows it as often as --caption-dropout says).
//
// An instruction editor (preset editor-tiny; InstructPix2Pix, Brooks et al., 2023) is the same pipeline whose
// UNet also takes the source picture's latent beside the noisy one (8 input channels): trained on (source,
// instruction, target) triplets, it turns "make the circle red" into the edited picture, guided by the
// instruction and by the source with a scale each.
//
// A generator's directory is laid out as a diffusers pipeline's, with mmlearn's CLIP as the text encoder:
//   config.json                 model_type "generator", the image size and the sampling defaults
//   scheduler/scheduler_config.json   the noise schedule (diffusers' DDPMScheduler fields)
//   text_encoder/               a CLIP model directory (its text tower conditions the UNet)
//   vae/  unet/                 diffusers folders (config.json, diffusion_pytorch_model.safetensors)
//
//   auto g = mmlearn::load_generator("run");
//   torch::Tensor images = mmlearn::generate(g, {"a red circle"}, {.steps = 25, .guidance = 3, .seed = 1});
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/core/precision.h"
#include "mmlearn/diffusion/autoencoder_kl.h"
#include "mmlearn/diffusion/sampler.h"
#include "mmlearn/diffusion/unet.h"
#include "mmlearn/models/clip_pretrained.h"

namespace mmlearn {

struct GeneratorConfig {
  int64_t image_size = 64;
  ScheduleOptions schedule;  // training's noise schedule (SD's scaled-linear over 1000 steps by default)
  Prediction prediction = Prediction::epsilon;
  // Sampling defaults (generate's flags override them). A small generator draws what it is asked best with a
  // stochastic sampler and guidance 3 (docs/guide.md, "A 45-minute run, judged").
  Sampler sampler = Sampler::dpmpp_2m_sde;
  int64_t sampling_steps = 25;
  double guidance = 3.0;
  double image_guidance = 1.5;  // an instruction editor's source guidance (InstructPix2Pix's default)
};
nlohmann::json to_json(const GeneratorConfig& config);
GeneratorConfig generator_config_from_json(const nlohmann::json& json, const std::string& where);

struct GeneratorBundle {
  GeneratorConfig config;
  ClipBundle text;  // the text tower and its tokenizer (the image tower is kept, unused, so that the
                    // directory is a CLIP model users can open)
  AutoencoderKL vae{nullptr};
  UNet unet{nullptr};
};

// The sizes of a preset ("generator-tiny") over a text tower `text_width` wide, for `image_size` images.
struct GeneratorSizes {
  AutoencoderKLConfig vae;
  UNetConfig unet;
};
GeneratorSizes generator_preset(const std::string& preset, int64_t text_width, int64_t image_size);
GeneratorBundle make_generator(const std::string& preset, ClipBundle text, int64_t image_size);
// Whether the generator edits by instruction (its UNet takes the source latent too).
bool edits_by_instruction(const GeneratorBundle& g);
// The edit settings a generator takes, as usage errors naming the flag: --strength is SDEdit's (a
// text-to-image generator), --image-guidance an instruction editor's; SDEdit's strength must leave at least
// one of `steps` to denoise.
void check_edit_flags(const GeneratorBundle& g, bool strength_given, bool image_guidance_given);
void check_strength_leaves_a_step(double strength, int64_t steps);
// A generator's UNet made an instruction editor's, as InstructPix2Pix starts from Stable Diffusion: the
// source latent's input channels added with zero weights, so that it draws as before until it learns them.
UNet with_source_channels(const UNet& unet);
std::vector<std::string> generator_preset_names();
void save_generator(const std::filesystem::path& dir, GeneratorBundle& g);
GeneratorBundle load_generator(const std::filesystem::path& dir);
bool holds_generator(const std::filesystem::path& dir);

// The text tower's token states [B, context, width] for prompts (the empty prompt: the unconditional).
torch::Tensor encode_prompts(GeneratorBundle& g, const std::vector<std::string>& prompts);

struct GenerateOptions {
  Sampler sampler = Sampler::dpmpp_2m_sde;
  int64_t steps = 25;
  double guidance = 3.0;  // 1: the prompt alone, no guidance
  double eta = 0;         // DDIM's η
  uint64_t seed = 0;
  std::function<void(int64_t step, int64_t steps)> progress;  // after each denoising step
  // The UNet's: bf16 autocast is about 3x faster on CPUs with native bf16; the sampler's arithmetic and the
  // autoencoder stay fp32.
  Precision precision = Precision::fp32;
};
// Images (uint8 [B, 3, S, S]) for prompts, one each; the same seed and prompts give the same images.
torch::Tensor generate(GeneratorBundle& g, const std::vector<std::string>& prompts,
                       const GenerateOptions& options);

// SDEdit (Meng et al., 2022): each source image (uint8 [B, 3, S, S] at the model's size) encoded, noised
// `strength` of the way to pure noise (the last strength x steps of the run's timesteps) and denoised with
// its prompt: low strength keeps the picture, high strength keeps only its rough layout.
struct EditOptions {
  GenerateOptions generate;
  double strength = 0.6;  // (0, 1]; strength x steps must be at least 1
};
torch::Tensor edit(GeneratorBundle& g, const torch::Tensor& sources_u8,
                   const std::vector<std::string>& prompts, const EditOptions& options);

// InstructPix2Pix's sampling: from noise, each step's prediction mixed from three (instruction and source,
// source alone, neither) as  uncond + guidance (full - source) + image_guidance (source - uncond).
struct InstructOptions {
  GenerateOptions generate;     // its guidance scales the instruction (InstructPix2Pix's default 7.5)
  double image_guidance = 1.5;  // how closely the result keeps to the source
};
torch::Tensor edit_by_instruction(GeneratorBundle& g, const torch::Tensor& sources_u8,
                                  const std::vector<std::string>& instructions,
                                  const InstructOptions& options);

// The latent an editor is conditioned on: the autoencoder's mean for the source, unscaled (as
// InstructPix2Pix).
torch::Tensor source_latents(GeneratorBundle& g, const torch::Tensor& sources_u8);

// Writes images (uint8 [N, 3, S, S]) as DIR/000.png, 001.png, ... and DIR/sheet.png, a grid of them
// `columns` wide; returns the image files in order.
std::vector<std::filesystem::path> write_generated(const std::filesystem::path& dir,
                                                   const torch::Tensor& images, int64_t columns);

// uint8 images [B, 3, S, S] <-> the autoencoder's [-1, 1].
torch::Tensor to_unit_range(const torch::Tensor& images_u8);
torch::Tensor to_pixels(const torch::Tensor& images);

}  // namespace mmlearn
