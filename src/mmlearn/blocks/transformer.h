// The shared transformer blocks: multi-head self-attention, the MLP, the pre-norm residual block and a stack
// of them. Parameters carry OpenAI CLIP's names (attn.in_proj_weight, ln_1, mlp.c_fc, ...), so checkpoints in
// that layout map onto these modules key for key.
//
//   mmlearn::Transformer t(mmlearn::TransformerConfig{.width = 128, .layers = 4, .heads = 4});
//   torch::Tensor y = t->forward(x);                  // x: [B, T, D]
//   torch::Tensor z = t->forward(x, causal_mask(T));  // additive [T, T] mask
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>

#include "mmlearn/blocks/packed_linear.h"

namespace mmlearn {

enum class Activation { gelu, quick_gelu };
Activation parse_activation(const std::string& name);  // "gelu", "quick_gelu"; throws on anything else
std::string to_string(Activation activation);
torch::Tensor activate(const torch::Tensor& x, Activation activation);

struct TransformerConfig {
  int64_t width = 512;
  int64_t layers = 12;
  int64_t heads = 8;
  double mlp_ratio = 4.0;
  Activation activation = Activation::gelu;
  double layer_norm_eps = 1e-5;
};

// The transformer of an encoder config (any struct with width, layers, heads and mlp_ratio).
template <typename EncoderConfig>
TransformerConfig transformer_config(const EncoderConfig& c, Activation activation, double layer_norm_eps) {
  return {.width = c.width,
          .layers = c.layers,
          .heads = c.heads,
          .mlp_ratio = c.mlp_ratio,
          .activation = activation,
          .layer_norm_eps = layer_norm_eps};
}

// Additive causal mask: 0 on and below the diagonal, -inf above.
torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options = {});
// The rows [T, offset + T] of T new positions after `offset` cached ones: each sees itself and before.
torch::Tensor causal_mask(int64_t new_positions, int64_t offset, const torch::TensorOptions& options);

struct MultiheadAttentionImpl : torch::nn::Module {
  MultiheadAttentionImpl(int64_t width, int64_t heads);
  // x: [B, T, D]; attn_mask: optional additive [T, T] or [B, 1|H, T, T].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_mask = {});

  int64_t width, heads;
  torch::Tensor in_proj_weight, in_proj_bias;  // q, k, v stacked: [3D, D], [3D]
  torch::nn::Linear out_proj{nullptr};
  PackedLinear packed_in_proj, packed_out_proj;
};
TORCH_MODULE(MultiheadAttention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t width, int64_t hidden, Activation activation);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
  Activation activation;
  PackedLinear packed_c_fc, packed_c_proj;
};
TORCH_MODULE(Mlp);

struct ResidualAttentionBlockImpl : torch::nn::Module {
  explicit ResidualAttentionBlockImpl(const TransformerConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_mask = {});

  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  MultiheadAttention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

struct TransformerImpl : torch::nn::Module {
  explicit TransformerImpl(const TransformerConfig& config);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& attn_mask = {});

  TransformerConfig config;
  torch::nn::ModuleList resblocks;
};
TORCH_MODULE(Transformer);

}  // namespace mmlearn
