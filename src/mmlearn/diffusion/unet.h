// The denoiser of latent diffusion: Stable Diffusion's UNet (diffusers' UNet2DConditionModel), which
// predicts the noise (or v) in a latent at a timestep, conditioned on a text encoder's tokens.
//   conv_in -> down levels (ResNet blocks, each followed by a spatial transformer on the levels with
//   cross-attention; every level but the last halves the latent) -> the middle (block, transformer, block)
//   -> up levels (one block more, each taking a skip connection from the way down, concatenated after the
//   current features; every level but the last doubles) -> GroupNorm, SiLU, conv_out.
// The timestep enters as a sinusoid of width block_out_channels[0] ([cos | sin], SD's flip_sin_to_cos),
// through time_embedding (linear_1, SiLU, linear_2, 4x wider), into every ResNet block. Names and the
// config.json fields are diffusers', so a diffusers `unet/` folder reads the same way; as there,
// `attention_head_dim` holds the number of heads (SD 1.x's long-standing naming).
//
//   mmlearn::UNet unet(mmlearn::UNetConfig{});
//   auto eps = unet->forward(noisy_latents, timesteps, text_tokens);   // [B, 4, h, w], [B], [B, L, D]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn {

struct UNetConfig {
  int64_t in_channels = 4, out_channels = 4;  // InstructPix2Pix: 8 in (the noisy and the source latent)
  std::vector<int64_t> block_out_channels{64, 128, 128};
  std::vector<bool> cross_attention{true, true, false};  // per down level; the up levels mirror it
  std::vector<int64_t> heads{4, 4, 4};                   // per level (diffusers: attention_head_dim)
  int64_t layers_per_block = 1, norm_num_groups = 16, cross_attention_dim = 128;
  double norm_eps = 1e-5;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  int64_t sample_size = 8;  // the latent side it was trained at (informational)
};
nlohmann::json to_json(const UNetConfig& config);
UNetConfig unet_config_from_json(const nlohmann::json& json, const std::string& where);

// Sinusoidal embeddings of timesteps [B] (any numeric type): [B, dim] in fp32.
torch::Tensor timestep_embedding(const torch::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                                 double freq_shift);

struct UNetMiddleImpl;  // unet.cpp

struct UNetImpl : torch::nn::Module {
  explicit UNetImpl(const UNetConfig& config);
  // latents [B, in_channels, h, w], timesteps [B], context [B, L, cross_attention_dim] -> [B, out, h, w]
  torch::Tensor forward(const torch::Tensor& latents, const torch::Tensor& timesteps,
                        const torch::Tensor& context);

  UNetConfig config;
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::Linear time_linear_1{nullptr}, time_linear_2{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};
  std::shared_ptr<UNetMiddleImpl> mid_block;
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(UNet);

// A diffusers folder (config.json, diffusion_pytorch_model.safetensors) or one mmlearn wrote.
UNet load_unet(const std::filesystem::path& dir);
void save_unet(UNet& unet, const std::filesystem::path& dir);

}  // namespace mmlearn
