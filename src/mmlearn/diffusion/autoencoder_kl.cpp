#include "mmlearn/diffusion/autoencoder_kl.h"

#include <torch/torch.h>

#include <cmath>

#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/diffusion/diffusers_folder.h"
#include "mmlearn/diffusion/unet_blocks.h"

namespace mmlearn {
namespace {
using nlohmann::json;

constexpr double kEps = 1e-6;  // every GroupNorm of SD's autoencoder

torch::nn::Conv2d conv3(int64_t in, int64_t out) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1));
}

// Two ResNet blocks around one-head self-attention, at the narrowest resolution.
struct VaeMiddleImpl : torch::nn::Module {
  VaeMiddleImpl(int64_t channels, int64_t groups) {
    resnets =
        register_module("resnets", torch::nn::ModuleList(ResnetBlock2D(channels, channels, 0, groups, kEps),
                                                         ResnetBlock2D(channels, channels, 0, groups, kEps)));
    attentions = register_module("attentions", torch::nn::ModuleList(VaeAttention(channels, groups, kEps)));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = resnets[0]->as<ResnetBlock2D>()->forward(x);
    x = attentions[0]->as<VaeAttention>()->forward(x);
    return resnets[1]->as<ResnetBlock2D>()->forward(x);
  }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
};
TORCH_MODULE(VaeMiddle);

// One level: ResNet blocks, then a resampler (down in the encoder, up in the decoder) unless it is the last.
struct VaeLevelImpl : torch::nn::Module {
  VaeLevelImpl(int64_t in, int64_t out, int64_t blocks, int64_t groups, const char* sampler) {
    resnets = register_module("resnets", torch::nn::ModuleList());
    for (int64_t j = 0; j < blocks; ++j)
      resnets->push_back(ResnetBlock2D(j == 0 ? in : out, out, 0, groups, kEps));
    if (std::string(sampler) == "downsamplers")
      down = (*register_module("downsamplers", torch::nn::ModuleList(Downsample2D(out, true))))[0]
                 ->as<Downsample2D>();
    else if (std::string(sampler) == "upsamplers")
      up = (*register_module("upsamplers", torch::nn::ModuleList(Upsample2D(out))))[0]->as<Upsample2D>();
  }
  torch::Tensor forward(torch::Tensor x) {
    for (const auto& block : *resnets) x = block->as<ResnetBlock2D>()->forward(x);
    if (down) x = down->forward(x);
    if (up) x = up->forward(x);
    return x;
  }
  torch::nn::ModuleList resnets{nullptr};
  Downsample2DImpl* down = nullptr;
  Upsample2DImpl* up = nullptr;
};
TORCH_MODULE(VaeLevel);

// GroupNorm, SiLU and a 3x3 convolution: how the encoder and the decoder end.
struct VaeOut {
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d conv{nullptr};
  void make(torch::nn::Module& m, int64_t groups, int64_t in, int64_t out) {
    norm = m.register_module("conv_norm_out",
                             torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, in).eps(kEps)));
    conv = m.register_module("conv_out", conv3(in, out));
  }
  torch::Tensor operator()(const torch::Tensor& x) {
    return conv(torch::nn::functional::silu(norm_fp32(norm, x)));
  }
};

}  // namespace

struct VaeEncoderImpl : torch::nn::Module {
  explicit VaeEncoderImpl(const AutoencoderKLConfig& c) {
    const auto& widths = c.block_out_channels;
    conv_in = register_module("conv_in", conv3(c.in_channels, widths[0]));
    down_blocks = register_module("down_blocks", torch::nn::ModuleList());
    for (size_t i = 0; i < widths.size(); ++i)
      down_blocks->push_back(VaeLevel(widths[i == 0 ? 0 : i - 1], widths[i], c.layers_per_block,
                                      c.norm_num_groups, i + 1 < widths.size() ? "downsamplers" : ""));
    mid_block = register_module("mid_block", VaeMiddle(widths.back(), c.norm_num_groups));
    out.make(*this, c.norm_num_groups, widths.back(), 2 * c.latent_channels);
  }
  torch::Tensor forward(const torch::Tensor& images) {
    auto x = conv_in(images);
    for (const auto& level : *down_blocks) x = level->as<VaeLevel>()->forward(x);
    return out(mid_block(x));
  }
  torch::nn::Conv2d conv_in{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  VaeMiddle mid_block{nullptr};
  VaeOut out;
};

struct VaeDecoderImpl : torch::nn::Module {
  explicit VaeDecoderImpl(const AutoencoderKLConfig& c) {
    const std::vector<int64_t> widths(c.block_out_channels.rbegin(), c.block_out_channels.rend());
    conv_in = register_module("conv_in", conv3(c.latent_channels, widths[0]));
    mid_block = register_module("mid_block", VaeMiddle(widths[0], c.norm_num_groups));
    up_blocks = register_module("up_blocks", torch::nn::ModuleList());
    for (size_t i = 0; i < widths.size(); ++i)
      up_blocks->push_back(VaeLevel(widths[i == 0 ? 0 : i - 1], widths[i], c.layers_per_block + 1,
                                    c.norm_num_groups, i + 1 < widths.size() ? "upsamplers" : ""));
    out.make(*this, c.norm_num_groups, widths.back(), c.out_channels);
  }
  torch::Tensor forward(const torch::Tensor& latents) {
    auto x = mid_block(conv_in(latents));
    for (const auto& level : *up_blocks) x = level->as<VaeLevel>()->forward(x);
    return out(x);
  }
  torch::nn::Conv2d conv_in{nullptr};
  VaeMiddle mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  VaeOut out;
};

json to_json(const AutoencoderKLConfig& c) {
  const size_t n = c.block_out_channels.size();
  return {{"_class_name", "AutoencoderKL"},
          {"in_channels", c.in_channels},
          {"out_channels", c.out_channels},
          {"latent_channels", c.latent_channels},
          {"down_block_types", std::vector<std::string>(n, "DownEncoderBlock2D")},
          {"up_block_types", std::vector<std::string>(n, "UpDecoderBlock2D")},
          {"block_out_channels", c.block_out_channels},
          {"layers_per_block", c.layers_per_block},
          {"act_fn", "silu"},
          {"norm_num_groups", c.norm_num_groups},
          {"sample_size", c.sample_size},
          {"scaling_factor", c.scaling_factor}};
}

AutoencoderKLConfig autoencoder_kl_config_from_json(const json& j, const std::string& where) {
  check(j.is_object(), where, ": expected a JSON object (an AutoencoderKL config)");
  check(string_value(j, "_class_name").empty() || string_value(j, "_class_name") == "AutoencoderKL", where,
        ": _class_name \"", string_value(j, "_class_name"), "\" is not AutoencoderKL");
  AutoencoderKLConfig c;
  read_field(j, "in_channels", c.in_channels, where);
  read_field(j, "out_channels", c.out_channels, where);
  read_field(j, "latent_channels", c.latent_channels, where);
  read_field(j, "block_out_channels", c.block_out_channels, where);
  read_field(j, "layers_per_block", c.layers_per_block, where);
  read_field(j, "norm_num_groups", c.norm_num_groups, where);
  read_field(j, "scaling_factor", c.scaling_factor, where);
  read_field(j, "sample_size", c.sample_size, where);
  const size_t n = c.block_out_channels.size();
  check(n >= 1 && n <= 6, where, ": block_out_channels needs 1 to 6 levels (it has ", n, ")");
  for (const char* key : {"down_block_types", "up_block_types"}) {
    std::vector<std::string> types;
    read_field(j, key, types, where);
    const std::string expected = key[0] == 'd' ? "DownEncoderBlock2D" : "UpDecoderBlock2D";
    check(types.empty() || types == std::vector<std::string>(n, expected), where, ": ", key, " must be ", n,
          " x \"", expected, "\" (one per block_out_channels entry)");
  }
  const std::string act = j.contains("act_fn") ? string_value(j, "act_fn") : "silu";
  check(act == "silu", where, ": act_fn \"", act, "\" is not supported (silu)");
  check_field_range(where, "in_channels", c.in_channels, 1, 16);
  check_field_range(where, "out_channels", c.out_channels, 1, 16);
  check_field_range(where, "latent_channels", c.latent_channels, 1, 64);
  check_field_range(where, "layers_per_block", c.layers_per_block, 1, 8);
  check_field_range(where, "norm_num_groups", c.norm_num_groups, 1, 1024);
  check_field_range(where, "sample_size", c.sample_size, 8, 4096);
  for (const int64_t w : c.block_out_channels) {
    check_field_range(where, "block_out_channels", w, 1, 4096);
    check(w % c.norm_num_groups == 0, where, ": block_out_channels ", w,
          " is not divisible by norm_num_groups ", c.norm_num_groups);
  }
  check(std::isfinite(c.scaling_factor) && c.scaling_factor > 0 && c.scaling_factor <= 100, where,
        ": scaling_factor ", c.scaling_factor, " must be positive and finite");
  return c;
}

torch::Tensor DiagonalGaussian::sample(at::Generator generator) const {
  return mean + torch::exp(0.5 * logvar) * at::randn(mean.sizes(), generator, mean.options());
}

torch::Tensor DiagonalGaussian::kl() const {
  return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum({1, 2, 3});
}

AutoencoderKLImpl::AutoencoderKLImpl(const AutoencoderKLConfig& config_) : config(config_) {
  autoencoder_kl_config_from_json(to_json(config), "AutoencoderKLConfig");  // the same checks as a file's
  encoder = register_module("encoder", std::make_shared<VaeEncoderImpl>(config));
  decoder = register_module("decoder", std::make_shared<VaeDecoderImpl>(config));
  const int64_t L = config.latent_channels;
  quant_conv = register_module("quant_conv", torch::nn::Conv2d(2 * L, 2 * L, 1));
  post_quant_conv = register_module("post_quant_conv", torch::nn::Conv2d(L, L, 1));
}

DiagonalGaussian AutoencoderKLImpl::encode(const torch::Tensor& images) {
  check(images.dim() == 4 && images.size(1) == config.in_channels,
        "AutoencoderKL::encode: expected images [B, ", config.in_channels, ", H, W], got ", images.sizes());
  const int64_t f = config.downsampling();
  check(images.size(2) % f == 0 && images.size(3) % f == 0, "AutoencoderKL::encode: image sides ",
        images.size(2), "x", images.size(3), " must be multiples of ", f);
  const auto moments = quant_conv(encoder->forward(images)).chunk(2, 1);
  return {moments[0], moments[1].clamp(-30.0, 20.0)};
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& latents) {
  check(latents.dim() == 4 && latents.size(1) == config.latent_channels,
        "AutoencoderKL::decode: expected latents [B, ", config.latent_channels, ", h, w], got ",
        latents.sizes());
  return decoder->forward(post_quant_conv(latents));
}

AutoencoderKL load_autoencoder_kl(const std::filesystem::path& dir) {
  AutoencoderKL vae(
      autoencoder_kl_config_from_json(read_diffusers_config(dir), (dir / "config.json").string()));
  load_diffusers_weights(*vae, dir);
  return vae;
}

void save_autoencoder_kl(AutoencoderKL& vae, const std::filesystem::path& dir) {
  save_diffusers_folder(*vae, to_json(vae->config), dir);
}

}  // namespace mmlearn
