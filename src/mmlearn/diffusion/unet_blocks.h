// The blocks Stable Diffusion's autoencoder and UNet are built from, with the module names of Hugging Face
// diffusers (models/resnet.py, attention.py, attention_processor.py, transformers/transformer_2d.py), so a
// diffusers checkpoint's keys are these modules' own:
//   ResnetBlock2D     norm1, conv1, [time_emb_proj], norm2, conv2, [conv_shortcut]: GroupNorm-SiLU-conv
//                     twice, the timestep embedding (after a SiLU) added between, a 1x1 shortcut when the
//                     width changes;
//   Downsample2D      conv, 3x3 stride 2 (the autoencoder pads right and bottom by one instead of all sides);
//   Upsample2D        nearest 2x (or to a given size), then conv;
//   VaeAttention      the autoencoder's one-head self-attention over positions: group_norm, to_q, to_k, to_v,
//                     to_out.0, with the residual;
//   Transformer2D     the UNet's spatial transformer: norm (GroupNorm), proj_in (1x1), one block of
//                     self-attention (attn1), cross-attention to the text tokens (attn2) and a GEGLU
//                     feed-forward (ff.net.0.proj, ff.net.2), each pre-LayerNorm with a residual; proj_out,
//                     and the residual over it all.
//
//   mmlearn::ResnetBlock2D block(64, 128, /*time_channels=*/256, /*groups=*/32, /*eps=*/1e-5);
//   auto y = block->forward(x, time_embedding);   // [B, 64, H, W] -> [B, 128, H, W]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <vector>

namespace mmlearn {

// A normalization's input in fp32: under CPU bf16 autocast the norms' weights stay fp32, and libtorch's
// group and layer norms take no mixed types (a bf16 output goes on to the next matrix product anyway).
template <class Norm>
torch::Tensor norm_fp32(Norm& norm, const torch::Tensor& x) {
  return norm(x.scalar_type() == torch::kBFloat16 || x.scalar_type() == torch::kHalf ? x.to(torch::kFloat)
                                                                                     : x);
}

struct ResnetBlock2DImpl : torch::nn::Module {
  // time_channels 0: no timestep embedding (the autoencoder's blocks).
  ResnetBlock2DImpl(int64_t in, int64_t out, int64_t time_channels, int64_t groups, double eps);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& time_embedding = {});

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  torch::nn::Linear time_emb_proj{nullptr};
};
TORCH_MODULE(ResnetBlock2D);

struct Downsample2DImpl : torch::nn::Module {
  // pad_right_bottom: the autoencoder's downsampling (no padding, then one zero row and column after).
  Downsample2DImpl(int64_t channels, bool pad_right_bottom);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv{nullptr};
  bool pad_right_bottom;
};
TORCH_MODULE(Downsample2D);

struct Upsample2DImpl : torch::nn::Module {
  explicit Upsample2DImpl(int64_t channels);
  // size: the skip connection's height and width where halving rounded (odd sizes); else twice x's.
  torch::Tensor forward(const torch::Tensor& x, std::optional<std::vector<int64_t>> size = std::nullopt);

  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

struct VaeAttentionImpl : torch::nn::Module {
  VaeAttentionImpl(int64_t channels, int64_t groups, double eps);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};  // [Linear]: "to_out.0", as diffusers names it
};
TORCH_MODULE(VaeAttention);

// Multi-head attention of queries `dim` wide to keys and values from `context_dim`-wide tokens: to_q, to_k,
// to_v without bias, to_out.0 with.
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int64_t dim, int64_t context_dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

  int64_t heads;
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};
};
TORCH_MODULE(CrossAttention);

// The feed-forward's GEGLU: proj to twice the inner width, value * gelu(gate).
struct GegluImpl : torch::nn::Module {
  GegluImpl(int64_t dim, int64_t inner);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(Geglu);

struct BasicTransformerBlockImpl : torch::nn::Module {
  BasicTransformerBlockImpl(int64_t dim, int64_t context_dim, int64_t heads);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& context);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  CrossAttention attn1{nullptr}, attn2{nullptr};
  Geglu ff_in{nullptr};  // ff.net.0, then ff.net.1 (dropout, no weights), ff.net.2
  torch::nn::Linear ff_out{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DImpl : torch::nn::Module {
  Transformer2DImpl(int64_t channels, int64_t context_dim, int64_t heads, int64_t groups);
  // x [B, C, H, W], context (the text's tokens) [B, L, context_dim].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d proj_in{nullptr}, proj_out{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
  BasicTransformerBlock block{nullptr};
};
TORCH_MODULE(Transformer2D);

}  // namespace mmlearn
