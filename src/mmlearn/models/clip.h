// CLIP (Radford et al., 2021): a Vision Transformer (or CLIP's ResNet) and a text transformer projected into
// one embedding space, trained with the symmetric contrastive loss and a learned temperature. ClipConfig is
// the model's whole description: it is written to config.json in every model directory and read back before
// the weights, so the quirks that travel with a checkpoint (activation, LayerNorm eps, image size, mean/std)
// are never guessed.
//
//   auto config = mmlearn::clip_preset("clip-tiny");
//   mmlearn::Clip model(config);
//   auto image = model->encode_image(pixels);  // [B, E], L2-normalized
//   auto text = model->encode_text(ids);       // [B, E], L2-normalized
#pragma once

#include <torch/nn/module.h>

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/text/text_transformer.h"
#include "mmlearn/vision/modified_resnet.h"
#include "mmlearn/vision/vit.h"

namespace mmlearn {

struct ClipConfig {
  std::string preset = "custom";
  int64_t embed_dim = 512;
  VisionConfig vision;
  TextConfig text;
  Activation activation = Activation::gelu;
  double layer_norm_eps = 1e-5;
  double logit_scale_init = 2.6592;  // ln(1 / 0.07), CLIP's initial temperature
  // Image normalisation of the pixels the model sees (CLIP's defaults).
  std::array<double, 3> image_mean{0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> image_std{0.26862954, 0.26130258, 0.27577711};
  // How an image file becomes pixels (models/clip_pixels.h): "mmlearn" (downscaled while decoding, bilinear
  // resize, centre crop: what training does), or a pretrained family's exact pipeline, "openai" (torchvision)
  // or "hf" (CLIPImageProcessor), resizing the shorter side to resize_shortest (0: image_size) before the
  // centre crop to image_size.
  std::string image_preprocess = "mmlearn";
  int64_t resize_shortest = 0;
};

nlohmann::json to_json(const ClipConfig& config);
// Reads a config written by to_json; `where` names the file for errors (unknown or mistyped fields fail).
ClipConfig clip_config_from_json(const nlohmann::json& json, const std::string& where);

// The text tower's part of config.json (shared with the audio–text model, models/clap.h).
nlohmann::json to_json(const TextConfig& config);
void read_text_config(const nlohmann::json& json, TextConfig& config, const std::string& where);

// A lower bound of the parameters a config describes (transformer matrices, token embeddings), for checking
// a config against its weights before building it (models/weight_files.h).
double least_parameters(const ClipConfig& config);
double least_parameters(const TextConfig& text);

// Presets are data: name -> config. clip-tiny trains on a CPU in minutes; the others are the published sizes.
ClipConfig clip_preset(const std::string& name);
std::vector<std::string> clip_preset_names();

// uint8 RGB images [B, 3, H, W] -> float32 (x / 255 - mean) / std with the config's mean and std.
torch::Tensor normalize_pixels(const ClipConfig& config, const torch::Tensor& images_u8);

struct ClipImpl : torch::nn::Module {
  explicit ClipImpl(const ClipConfig& config);
  torch::Tensor encode_image(
      const torch::Tensor& pixels);                     // normalized pixels [B, 3, H, W] -> [B, E] unit norm
  torch::Tensor encode_text(const torch::Tensor& ids);  // [B, T] -> [B, E] unit norm
  // Converts uint8 RGB images [B, 3, H, W] into the normalized float pixels the vision tower expects.
  torch::Tensor normalize_pixels(const torch::Tensor& images_u8) const;

  ClipConfig config;
  // The image tower, registered as "visual": one of the two, as config.vision says.
  VisionTransformer vit{nullptr};
  ModifiedResNet resnet{nullptr};
  TextTransformer text{nullptr};
  torch::Tensor logit_scale;
};
TORCH_MODULE(Clip);

}  // namespace mmlearn
