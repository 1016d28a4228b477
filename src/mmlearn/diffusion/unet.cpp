#include "mmlearn/diffusion/unet.h"

#include <torch/torch.h>

#include <cmath>

#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/diffusion/diffusers_folder.h"
#include "mmlearn/diffusion/unet_blocks.h"

namespace mmlearn {
namespace {
using nlohmann::json;
namespace F = torch::nn::functional;

// One level of the way down or up: ResNet blocks, each followed by a spatial transformer where the level
// cross-attends, then a resampler unless it is the last level.
struct UNetLevelImpl : torch::nn::Module {
  // in_channels[j]: what block j takes (on the way up, with its skip connection concatenated).
  UNetLevelImpl(const std::vector<int64_t>& in_channels, int64_t out, const UNetConfig& c, int64_t heads,
                bool attention, const std::string& sampler) {
    const int64_t time = 4 * c.block_out_channels[0];
    resnets = register_module("resnets", torch::nn::ModuleList());
    for (const int64_t in : in_channels)
      resnets->push_back(ResnetBlock2D(in, out, time, c.norm_num_groups, c.norm_eps));
    if (attention) {
      attentions = register_module("attentions", torch::nn::ModuleList());
      for (size_t j = 0; j < in_channels.size(); ++j)
        attentions->push_back(Transformer2D(out, c.cross_attention_dim, heads, c.norm_num_groups));
    }
    if (sampler == "down")
      down = (*register_module("downsamplers", torch::nn::ModuleList(Downsample2D(out, false))))[0]
                 ->as<Downsample2D>();
    if (sampler == "up")
      up = (*register_module("upsamplers", torch::nn::ModuleList(Upsample2D(out))))[0]->as<Upsample2D>();
  }
  // Block j of the level.
  torch::Tensor block(size_t j, const torch::Tensor& x, const torch::Tensor& time,
                      const torch::Tensor& context) {
    auto h = resnets[j]->as<ResnetBlock2D>()->forward(x, time);
    return attentions ? attentions[j]->as<Transformer2D>()->forward(h, context) : h;
  }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
  Downsample2DImpl* down = nullptr;
  Upsample2DImpl* up = nullptr;
};
TORCH_MODULE(UNetLevel);

std::string down_type(bool attention) { return attention ? "CrossAttnDownBlock2D" : "DownBlock2D"; }
std::string up_type(bool attention) { return attention ? "CrossAttnUpBlock2D" : "UpBlock2D"; }

}  // namespace

// A block, a spatial transformer and a block, at the narrowest resolution.
struct UNetMiddleImpl : torch::nn::Module {
  explicit UNetMiddleImpl(const UNetConfig& c) {
    const int64_t width = c.block_out_channels.back(), time = 4 * c.block_out_channels[0];
    resnets = register_module(
        "resnets", torch::nn::ModuleList(ResnetBlock2D(width, width, time, c.norm_num_groups, c.norm_eps),
                                         ResnetBlock2D(width, width, time, c.norm_num_groups, c.norm_eps)));
    attentions =
        register_module("attentions", torch::nn::ModuleList(Transformer2D(
                                          width, c.cross_attention_dim, c.heads.back(), c.norm_num_groups)));
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& time, const torch::Tensor& context) {
    x = resnets[0]->as<ResnetBlock2D>()->forward(x, time);
    x = attentions[0]->as<Transformer2D>()->forward(x, context);
    return resnets[1]->as<ResnetBlock2D>()->forward(x, time);
  }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
};

json to_json(const UNetConfig& c) {
  std::vector<std::string> down, up;
  for (const bool a : c.cross_attention) down.push_back(down_type(a));
  for (auto it = c.cross_attention.rbegin(); it != c.cross_attention.rend(); ++it) up.push_back(up_type(*it));
  return {{"_class_name", "UNet2DConditionModel"},
          {"in_channels", c.in_channels},
          {"out_channels", c.out_channels},
          {"block_out_channels", c.block_out_channels},
          {"down_block_types", down},
          {"mid_block_type", "UNetMidBlock2DCrossAttn"},
          {"up_block_types", up},
          {"attention_head_dim", c.heads},
          {"layers_per_block", c.layers_per_block},
          {"norm_num_groups", c.norm_num_groups},
          {"norm_eps", c.norm_eps},
          {"cross_attention_dim", c.cross_attention_dim},
          {"flip_sin_to_cos", c.flip_sin_to_cos},
          {"freq_shift", c.freq_shift},
          {"act_fn", "silu"},
          {"sample_size", c.sample_size}};
}

UNetConfig unet_config_from_json(const json& j, const std::string& where) {
  check(j.is_object(), where, ": expected a JSON object (a UNet2DConditionModel config)");
  const std::string name = string_value(j, "_class_name");
  check(name.empty() || name == "UNet2DConditionModel", where, ": _class_name \"", name,
        "\" is not UNet2DConditionModel");
  UNetConfig c;
  read_field(j, "in_channels", c.in_channels, where);
  read_field(j, "out_channels", c.out_channels, where);
  read_field(j, "block_out_channels", c.block_out_channels, where);
  read_field(j, "layers_per_block", c.layers_per_block, where);
  read_field(j, "norm_num_groups", c.norm_num_groups, where);
  read_field(j, "norm_eps", c.norm_eps, where);
  read_field(j, "cross_attention_dim", c.cross_attention_dim, where);
  read_field(j, "flip_sin_to_cos", c.flip_sin_to_cos, where);
  read_field(j, "freq_shift", c.freq_shift, where);
  read_field(j, "sample_size", c.sample_size, where);
  const size_t n = c.block_out_channels.size();
  check(n >= 1 && n <= 6, where, ": block_out_channels needs 1 to 6 levels (it has ", n, ")");
  // SD 1.x writes one head count for every level, SD 2.x a list: both are head counts.
  if (j.contains("attention_head_dim") && j["attention_head_dim"].is_number_integer())
    c.heads.assign(n, j["attention_head_dim"].get<int64_t>());
  else
    read_field(j, "attention_head_dim", c.heads, where);
  check(c.heads.size() == n, where, ": attention_head_dim has ", c.heads.size(), " entries for ", n,
        " levels");
  check(!j.contains("num_attention_heads") || j["num_attention_heads"].is_null(), where,
        ": num_attention_heads is not supported (diffusers reads the head count from attention_head_dim)");
  std::vector<std::string> down, up;
  read_field(j, "down_block_types", down, where);
  read_field(j, "up_block_types", up, where);
  if (down.empty()) {
    down.clear();
    for (const bool a : c.cross_attention) down.push_back(down_type(a));
    down.resize(n, "CrossAttnDownBlock2D");
  }
  check(down.size() == n, where, ": down_block_types has ", down.size(), " entries for ", n, " levels");
  c.cross_attention.clear();
  for (const auto& t : down) {
    check(t == "CrossAttnDownBlock2D" || t == "DownBlock2D", where, ": down_block_types entry \"", t,
          "\" is not supported (CrossAttnDownBlock2D, DownBlock2D)");
    c.cross_attention.push_back(t == "CrossAttnDownBlock2D");
  }
  if (!up.empty()) {
    std::vector<std::string> mirrored;
    for (auto it = c.cross_attention.rbegin(); it != c.cross_attention.rend(); ++it)
      mirrored.push_back(up_type(*it));
    check(up == mirrored, where, ": up_block_types must mirror down_block_types (expected ",
          nlohmann::json(mirrored).dump(), ")");
  }
  const std::string mid =
      j.contains("mid_block_type") ? string_value(j, "mid_block_type") : "UNetMidBlock2DCrossAttn";
  check(mid == "UNetMidBlock2DCrossAttn", where, ": mid_block_type \"", mid, "\" is not supported");
  for (const char* flag : {"use_linear_projection", "upcast_attention", "dual_cross_attention",
                           "only_cross_attention", "center_input_sample"})
    check(!j.contains(flag) || j[flag] == false, where, ": ", flag, " is not supported (only false)");
  check(!j.contains("transformer_layers_per_block") || j["transformer_layers_per_block"] == 1, where,
        ": transformer_layers_per_block must be 1");
  const std::string act = j.contains("act_fn") ? string_value(j, "act_fn") : "silu";
  check(act == "silu", where, ": act_fn \"", act, "\" is not supported (silu)");
  check_field_range(where, "in_channels", c.in_channels, 1, 64);
  check_field_range(where, "out_channels", c.out_channels, 1, 64);
  check_field_range(where, "layers_per_block", c.layers_per_block, 1, 8);
  check_field_range(where, "norm_num_groups", c.norm_num_groups, 1, 1024);
  check_field_range(where, "cross_attention_dim", c.cross_attention_dim, 1, 8192);
  check_field_range(where, "sample_size", c.sample_size, 1, 1024);
  for (size_t i = 0; i < n; ++i) {
    const int64_t w = c.block_out_channels[i];
    check_field_range(where, "block_out_channels", w, 1, 8192);
    check_field_range(where, "attention_head_dim", c.heads[i], 1, 256);
    check(w % c.norm_num_groups == 0, where, ": block_out_channels ", w,
          " is not divisible by norm_num_groups ", c.norm_num_groups);
    check(w % c.heads[i] == 0, where, ": block_out_channels ", w, " is not divisible by its ", c.heads[i],
          " heads (attention_head_dim)");
  }
  check(std::isfinite(c.norm_eps) && c.norm_eps > 0 && c.norm_eps < 1, where, ": norm_eps ", c.norm_eps,
        " must be in (0, 1)");
  check(std::isfinite(c.freq_shift) && std::abs(c.freq_shift) <= 1, where, ": freq_shift ", c.freq_shift,
        " must be in [-1, 1]");
  return c;
}

torch::Tensor timestep_embedding(const torch::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                                 double freq_shift) {
  const int64_t half = dim / 2;
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(timesteps.device());
  const auto exponent = -std::log(10000.0) * torch::arange(half, options) / (half - freq_shift);
  const auto args = timesteps.to(torch::kFloat).unsqueeze(1) * exponent.exp().unsqueeze(0);
  auto emb =
      flip_sin_to_cos ? torch::cat({args.cos(), args.sin()}, -1) : torch::cat({args.sin(), args.cos()}, -1);
  return dim % 2 ? F::pad(emb, F::PadFuncOptions({0, 1})) : emb;
}

UNetImpl::UNetImpl(const UNetConfig& config_) : config(config_) {
  unet_config_from_json(to_json(config), "UNetConfig");  // the same checks as a file's
  const auto& widths = config.block_out_channels;
  const size_t n = widths.size();
  const int64_t L = config.layers_per_block, time = 4 * widths[0];
  conv_in = register_module(
      "conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.in_channels, widths[0], 3).padding(1)));
  auto time_embedding = std::make_shared<torch::nn::Module>();
  time_linear_1 = time_embedding->register_module("linear_1", torch::nn::Linear(widths[0], time));
  time_linear_2 = time_embedding->register_module("linear_2", torch::nn::Linear(time, time));
  register_module("time_embedding", time_embedding);
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < n; ++i) {
    std::vector<int64_t> in(static_cast<size_t>(L), widths[i]);
    in[0] = widths[i == 0 ? 0 : i - 1];
    down_blocks->push_back(UNetLevel(in, widths[i], config, config.heads[i], config.cross_attention[i],
                                     i + 1 < n ? "down" : ""));
  }
  mid_block = register_module("mid_block", std::make_shared<UNetMiddleImpl>(config));
  // Up level i mirrors down level n-1-i; block j takes the features so far and one skip connection.
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < n; ++i) {
    const size_t level = n - 1 - i;
    const int64_t out = widths[level], previous = widths[std::min(n - 1, level + 1)];
    const int64_t skip_last = widths[level == 0 ? 0 : level - 1];  // what entered the down level
    std::vector<int64_t> in;
    for (int64_t j = 0; j <= L; ++j) in.push_back((j == 0 ? previous : out) + (j == L ? skip_last : out));
    up_blocks->push_back(UNetLevel(in, out, config, config.heads[level], config.cross_attention[level],
                                   i + 1 < n ? "up" : ""));
  }
  conv_norm_out = register_module(
      "conv_norm_out",
      torch::nn::GroupNorm(
          torch::nn::GroupNormOptions(config.norm_num_groups, widths[0]).eps(config.norm_eps)));
  conv_out = register_module(
      "conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(widths[0], config.out_channels, 3).padding(1)));
}

torch::Tensor UNetImpl::forward(const torch::Tensor& latents, const torch::Tensor& timesteps,
                                const torch::Tensor& context) {
  check(latents.dim() == 4 && latents.size(1) == config.in_channels, "UNet: expected latents [B, ",
        config.in_channels, ", h, w], got ", latents.sizes());
  check(context.dim() == 3 && context.size(0) == latents.size(0) &&
            context.size(2) == config.cross_attention_dim,
        "UNet: expected context [", latents.size(0), ", L, ", config.cross_attention_dim, "], got ",
        context.sizes());
  const auto steps = timesteps.dim() == 0 ? timesteps.expand({latents.size(0)}) : timesteps;
  check(steps.dim() == 1 && steps.size(0) == latents.size(0), "UNet: expected ", latents.size(0),
        " timesteps, got ", timesteps.sizes());
  const auto sinusoid =
      timestep_embedding(steps, config.block_out_channels[0], config.flip_sin_to_cos, config.freq_shift)
          .to(latents.scalar_type());
  const auto time = time_linear_2(F::silu(time_linear_1(sinusoid)));
  auto x = conv_in(latents);
  std::vector<torch::Tensor> skips{x};
  for (const auto& module : *down_blocks) {
    auto& level = *module->as<UNetLevel>();
    for (size_t j = 0; j < level.resnets->size(); ++j) skips.push_back(x = level.block(j, x, time, context));
    if (level.down) skips.push_back(x = level.down->forward(x));
  }
  x = mid_block->forward(x, time, context);
  for (const auto& module : *up_blocks) {
    auto& level = *module->as<UNetLevel>();
    for (size_t j = 0; j < level.resnets->size(); ++j) {
      x = level.block(j, torch::cat({x, skips.back()}, 1), time, context);
      skips.pop_back();
    }
    // To the size of the skip connection next in line: twice, unless halving it rounded up (odd sides).
    if (level.up) x = level.up->forward(x, std::vector<int64_t>{skips.back().size(2), skips.back().size(3)});
  }
  return conv_out(F::silu(norm_fp32(conv_norm_out, x)));
}

UNet load_unet(const std::filesystem::path& dir) {
  UNet unet(unet_config_from_json(read_diffusers_config(dir), (dir / "config.json").string()));
  load_diffusers_weights(*unet, dir);
  return unet;
}

void save_unet(UNet& unet, const std::filesystem::path& dir) {
  save_diffusers_folder(*unet, to_json(unet->config), dir);
}

}  // namespace mmlearn
