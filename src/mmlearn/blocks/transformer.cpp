#include "mmlearn/blocks/transformer.h"

#include <torch/version.h>

#include <cmath>

#include "mmlearn/core/error.h"

namespace mmlearn {

Activation parse_activation(const std::string& name) {
  if (name == "gelu") return Activation::gelu;
  if (name == "quick_gelu") return Activation::quick_gelu;
  throw Error(str_cat("unknown activation \"", name, "\" (expected \"gelu\" or \"quick_gelu\")"));
}

std::string to_string(Activation activation) {
  return activation == Activation::gelu ? "gelu" : "quick_gelu";
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  // QuickGELU is the sigmoid approximation OpenAI's CLIP was trained with (x * sigmoid(1.702 x)).
  return activation == Activation::gelu ? torch::gelu(x) : x * torch::sigmoid(1.702 * x);
}

torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options) {
  return causal_mask(length, 0, options);
}

torch::Tensor causal_mask(int64_t new_positions, int64_t offset, const torch::TensorOptions& options) {
  return torch::full({new_positions, offset + new_positions}, -std::numeric_limits<float>::infinity(),
                     options)
      .triu(offset + 1);
}

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t width_, int64_t heads_)
    : width(width_), heads(heads_) {
  TORCH_CHECK(width % heads == 0, "attention width ", width, " is not divisible by ", heads, " heads");
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
  torch::nn::init::xavier_uniform_(in_proj_weight);  // as torch.nn.MultiheadAttention
  torch::nn::init::zeros_(out_proj->bias);
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& attn_mask) {
  const int64_t B = x.size(0), T = x.size(1), head_dim = width / heads;
  // [B, T, 3D] -> 3 x [B, H, T, hd]
  auto qkv = packed_in_proj(x, in_proj_weight, in_proj_bias)
                 .view({B, T, 3, heads, head_dim})
                 .permute({2, 0, 3, 1, 4});
#if TORCH_VERSION_MAJOR >= 2
  // On a GPU, the fused kernel (flash or memory-efficient attention): the same function without the
  // [B, H, T, T] scores in memory. The CPU keeps the explicit form, which the reference outputs pin down.
  if (x.is_cuda()) {
    const c10::optional<torch::Tensor> mask =
        attn_mask.defined() ? c10::optional<torch::Tensor>(attn_mask.to(qkv.scalar_type())) : c10::nullopt;
    auto out = at::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], mask);
    return packed_out_proj(out.transpose(1, 2).reshape({B, T, width}), out_proj->weight, out_proj->bias);
  }
#endif
  auto q = qkv[0] * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  auto scores = torch::matmul(q, qkv[1].transpose(-2, -1));
  if (attn_mask.defined()) scores = scores + attn_mask;
  auto out = torch::matmul(torch::softmax(scores, -1), qkv[2]);  // [B, H, T, hd]
  return packed_out_proj(out.transpose(1, 2).reshape({B, T, width}), out_proj->weight, out_proj->bias);
}

MlpImpl::MlpImpl(int64_t width, int64_t hidden, Activation activation_) : activation(activation_) {
  c_fc = register_module("c_fc", torch::nn::Linear(width, hidden));
  c_proj = register_module("c_proj", torch::nn::Linear(hidden, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return packed_c_proj(activate(packed_c_fc(x, c_fc->weight, c_fc->bias), activation), c_proj->weight,
                       c_proj->bias);
}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(const TransformerConfig& c) {
  auto ln = torch::nn::LayerNormOptions({c.width}).eps(c.layer_norm_eps);
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(ln));
  attn = register_module("attn", MultiheadAttention(c.width, c.heads));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", Mlp(c.width, std::llround(c.width * c.mlp_ratio), c.activation));
}

torch::Tensor ResidualAttentionBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& attn_mask) {
  auto h = x + attn(ln_1(x), attn_mask);
  return h + mlp(ln_2(h));
}

TransformerImpl::TransformerImpl(const TransformerConfig& c) : config(c) {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.layers; ++i) resblocks->push_back(ResidualAttentionBlock(c));
}

torch::Tensor TransformerImpl::forward(torch::Tensor x, const torch::Tensor& attn_mask) {
  for (const auto& block : *resblocks) x = block->as<ResidualAttentionBlock>()->forward(x, attn_mask);
  return x;
}

}  // namespace mmlearn
