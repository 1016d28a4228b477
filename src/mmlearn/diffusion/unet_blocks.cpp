#include "mmlearn/diffusion/unet_blocks.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>

namespace mmlearn {
namespace F = torch::nn::functional;

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = -1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding < 0 ? kernel / 2 : padding));
}

torch::nn::GroupNorm group_norm(int64_t groups, int64_t channels, double eps) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(eps));
}

// softmax(q k^T / sqrt(d)) v over heads: q [B, T, D], k and v [B, S, D] -> [B, T, D].
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t heads) {
  const int64_t B = q.size(0), T = q.size(1), S = k.size(1), D = q.size(2), d = D / heads;
  auto split = [&](const torch::Tensor& t, int64_t n) { return t.view({B, n, heads, d}).transpose(1, 2); };
#if TORCH_VERSION_MAJOR >= 2
  // On a GPU, the fused kernel; the CPU keeps the explicit form that the reference outputs pin down.
  if (q.is_cuda()) {
    auto out = at::scaled_dot_product_attention(split(q, T), split(k, S), split(v, S));
    return out.transpose(1, 2).reshape({B, T, D});
  }
#endif
  auto scores = torch::matmul(split(q, T), split(k, S).transpose(-2, -1)) / std::sqrt(static_cast<double>(d));
  return torch::matmul(torch::softmax(scores, -1), split(v, S)).transpose(1, 2).reshape({B, T, D});
}

// [B, C, H, W] -> [B, H*W, C] and back.
torch::Tensor to_tokens(const torch::Tensor& x) { return x.flatten(2).transpose(1, 2); }
torch::Tensor to_map(const torch::Tensor& tokens, const torch::Tensor& like) {
  return tokens.transpose(1, 2).reshape(like.sizes());
}

}  // namespace

ResnetBlock2DImpl::ResnetBlock2DImpl(int64_t in, int64_t out, int64_t time_channels, int64_t groups,
                                     double eps) {
  norm1 = register_module("norm1", group_norm(groups, in, eps));
  conv1 = register_module("conv1", conv(in, out, 3));
  if (time_channels > 0)
    time_emb_proj = register_module("time_emb_proj", torch::nn::Linear(time_channels, out));
  norm2 = register_module("norm2", group_norm(groups, out, eps));
  conv2 = register_module("conv2", conv(out, out, 3));
  if (in != out) conv_shortcut = register_module("conv_shortcut", conv(in, out, 1));
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& time_embedding) {
  auto h = conv1(F::silu(norm_fp32(norm1, x)));
  if (time_emb_proj) h = h + time_emb_proj(F::silu(time_embedding)).unsqueeze(-1).unsqueeze(-1);
  h = conv2(F::silu(norm_fp32(norm2, h)));
  return (conv_shortcut ? conv_shortcut(x) : x) + h;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, bool pad_right_bottom_)
    : pad_right_bottom(pad_right_bottom_) {
  conv = register_module("conv", mmlearn::conv(channels, channels, 3, 2, pad_right_bottom ? 0 : 1));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  return conv(pad_right_bottom ? F::pad(x, F::PadFuncOptions({0, 1, 0, 1})) : x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels) {
  conv = register_module("conv", mmlearn::conv(channels, channels, 3));
}

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x, std::optional<std::vector<int64_t>> size) {
  auto options = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (size)
    options.size(*size);
  else
    options.scale_factor(std::vector<double>{2.0, 2.0});
  return conv(F::interpolate(x, options));
}

VaeAttentionImpl::VaeAttentionImpl(int64_t channels, int64_t groups, double eps) {
  group_norm = register_module("group_norm", mmlearn::group_norm(groups, channels, eps));
  to_q = register_module("to_q", torch::nn::Linear(channels, channels));
  to_k = register_module("to_k", torch::nn::Linear(channels, channels));
  to_v = register_module("to_v", torch::nn::Linear(channels, channels));
  to_out = register_module("to_out", torch::nn::ModuleList(torch::nn::Linear(channels, channels)));
}

torch::Tensor VaeAttentionImpl::forward(const torch::Tensor& x) {
  const auto h = to_tokens(norm_fp32(group_norm, x));
  const auto out = to_out[0]->as<torch::nn::Linear>()->forward(attend(to_q(h), to_k(h), to_v(h), 1));
  return to_map(out, x) + x;
}

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t context_dim, int64_t heads_) : heads(heads_) {
  auto linear = [](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  to_q = register_module("to_q", linear(dim, dim));
  to_k = register_module("to_k", linear(context_dim, dim));
  to_v = register_module("to_v", linear(context_dim, dim));
  to_out =
      register_module("to_out", torch::nn::ModuleList(torch::nn::Linear(dim, dim), torch::nn::Dropout(0.0)));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  return to_out[0]->as<torch::nn::Linear>()->forward(attend(to_q(x), to_k(context), to_v(context), heads));
}

GegluImpl::GegluImpl(int64_t dim, int64_t inner) {
  proj = register_module("proj", torch::nn::Linear(dim, 2 * inner));
}

torch::Tensor GegluImpl::forward(const torch::Tensor& x) {
  const auto halves = proj(x).chunk(2, -1);
  return halves[0] * F::gelu(halves[1]);
}

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, int64_t context_dim, int64_t heads) {
  auto layer_norm = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)); };
  norm1 = register_module("norm1", layer_norm());
  attn1 = register_module("attn1", CrossAttention(dim, dim, heads));
  norm2 = register_module("norm2", layer_norm());
  attn2 = register_module("attn2", CrossAttention(dim, context_dim, heads));
  norm3 = register_module("norm3", layer_norm());
  ff_in = Geglu(dim, 4 * dim);
  ff_out = torch::nn::Linear(4 * dim, dim);
  auto ff = std::make_shared<torch::nn::Module>();
  ff->register_module("net", torch::nn::ModuleList(ff_in, torch::nn::Dropout(0.0), ff_out));
  register_module("ff", ff);
}

torch::Tensor BasicTransformerBlockImpl::forward(torch::Tensor x, const torch::Tensor& context) {
  auto h = norm_fp32(norm1, x);
  x = attn1(h, h) + x;
  x = attn2(norm_fp32(norm2, x), context) + x;
  return ff_out(ff_in(norm_fp32(norm3, x))) + x;
}

Transformer2DImpl::Transformer2DImpl(int64_t channels, int64_t context_dim, int64_t heads, int64_t groups) {
  norm = register_module("norm", group_norm(groups, channels, 1e-6));
  proj_in = register_module("proj_in", conv(channels, channels, 1));
  block = BasicTransformerBlock(channels, context_dim, heads);
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList(block));
  proj_out = register_module("proj_out", conv(channels, channels, 1));
}

torch::Tensor Transformer2DImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const auto h = proj_in(norm_fp32(norm, x));
  return proj_out(to_map(block(to_tokens(h), context), h)) + x;
}

}  // namespace mmlearn
