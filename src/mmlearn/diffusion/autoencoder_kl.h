// The KL-regularized convolutional autoencoder of latent diffusion (Rombach et al., 2022), in Stable
// Diffusion's structure and diffusers' names (AutoencoderKL): an encoder of ResNet blocks that halves the
// image at every level but the last, a middle of two blocks around one-head self-attention, and a 3x3
// convolution to the mean and log-variance of each latent channel (a diagonal Gaussian); a decoder that
// mirrors it, with one block more a level. `config.json` carries diffusers' fields, so a diffusers `vae/`
// folder and one mmlearn writes read the same way.
//
//   mmlearn::AutoencoderKL vae(mmlearn::AutoencoderKLConfig{});
//   auto posterior = vae->encode(images);               // images in [-1, 1], [B, 3, H, W]
//   auto z = posterior.sample(generator) * vae->config.scaling_factor;   // what the UNet learns
//   auto images_back = vae->decode(z / vae->config.scaling_factor);
#pragma once

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn {

struct AutoencoderKLConfig {
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<int64_t> block_out_channels{32, 64, 64};  // one level each; all but the last halve the image
  int64_t layers_per_block = 1, norm_num_groups = 16;
  double scaling_factor = 0.18215;  // latents are scaled to about unit variance before diffusion
  int64_t sample_size = 64;         // the image side it was trained at (informational)

  int64_t downsampling() const { return int64_t{1} << (block_out_channels.size() - 1); }
};
// diffusers' config.json fields ("_class_name": "AutoencoderKL"); every field checked (range, and what the
// structure needs, such as group counts that divide the widths), errors name `where` and the field.
nlohmann::json to_json(const AutoencoderKLConfig& config);
AutoencoderKLConfig autoencoder_kl_config_from_json(const nlohmann::json& json, const std::string& where);

// A diagonal Gaussian over latents: the encoder's mean and log-variance (clamped to [-30, 20] as SD does).
struct DiagonalGaussian {
  torch::Tensor mean, logvar;
  torch::Tensor mode() const { return mean; }
  torch::Tensor sample(at::Generator generator) const;
  torch::Tensor kl() const;  // KL to N(0, I), summed over each example's latent: [B]
};

struct VaeEncoderImpl;  // autoencoder_kl.cpp
struct VaeDecoderImpl;

struct AutoencoderKLImpl : torch::nn::Module {
  explicit AutoencoderKLImpl(const AutoencoderKLConfig& config);
  DiagonalGaussian encode(const torch::Tensor& images);  // [-1, 1], sides divisible by downsampling()
  torch::Tensor decode(const torch::Tensor& latents);    // unscaled latents -> images in about [-1, 1]

  AutoencoderKLConfig config;
  std::shared_ptr<VaeEncoderImpl> encoder;
  std::shared_ptr<VaeDecoderImpl> decoder;
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
};
TORCH_MODULE(AutoencoderKL);

// A diffusers folder (config.json, diffusion_pytorch_model.safetensors) or one mmlearn wrote; every tensor is
// checked against the config's shapes.
AutoencoderKL load_autoencoder_kl(const std::filesystem::path& dir);
void save_autoencoder_kl(AutoencoderKL& vae, const std::filesystem::path& dir);

}  // namespace mmlearn
