#include "mmlearn/blocks/decoder_block.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace mmlearn {

std::pair<torch::Tensor, torch::Tensor> cached_self_attention(LayerCache* cache, torch::Tensor k,
                                                              torch::Tensor v) {
  if (!cache) return {k, v};
  if (cache->self_k.defined()) {
    k = torch::cat({cache->self_k, k}, 1);
    v = torch::cat({cache->self_v, v}, 1);
  }
  cache->self_k = k;
  cache->self_v = v;
  return {k, v};
}

std::pair<torch::Tensor, torch::Tensor> cached_cross_attention(
    LayerCache* cache, const std::function<std::pair<torch::Tensor, torch::Tensor>()>& make) {
  if (cache && cache->cross_k.defined()) return {cache->cross_k, cache->cross_v};
  auto kv = make();
  if (cache) std::tie(cache->cross_k, cache->cross_v) = kv;
  return kv;
}

void KVCache::select(const torch::Tensor& rows) {
  for (auto& layer : layers)
    for (torch::Tensor* t : {&layer.self_k, &layer.self_v, &layer.cross_k, &layer.cross_v})
      if (t->defined()) *t = t->index_select(0, rows);
}

AttentionImpl::AttentionImpl(int64_t width, int64_t heads_) : heads(heads_) {
  TORCH_CHECK(width % heads == 0, "attention width ", width, " is not divisible by ", heads, " heads");
  q_proj = register_module("q_proj", torch::nn::Linear(width, width));
  k_proj = register_module("k_proj", torch::nn::Linear(width, width));
  v_proj = register_module("v_proj", torch::nn::Linear(width, width));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& v,
                                     const torch::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), S = k.size(1), hd = D / heads;
  auto q = packed_q(x, q_proj->weight, q_proj->bias).view({B, T, heads, hd}).transpose(1, 2);
  auto scores = torch::matmul(q, k.view({B, S, heads, hd}).permute({0, 2, 3, 1})) / std::sqrt(double(hd));
  if (mask.defined()) scores = scores + mask;
  auto out = torch::matmul(torch::softmax(scores, -1), v.view({B, S, heads, hd}).transpose(1, 2));
  return packed_out(out.transpose(1, 2).reshape({B, T, D}), out_proj->weight, out_proj->bias);
}

DecoderBlockImpl::DecoderBlockImpl(int64_t width, int64_t heads, double mlp_ratio, bool cross_attention) {
  auto ln = torch::nn::LayerNormOptions({width});
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(ln));
  attn = register_module("attn", Attention(width, heads));
  if (cross_attention) {
    ln_cross = register_module("ln_cross", torch::nn::LayerNorm(ln));
    cross_attn = register_module("cross_attn", Attention(width, heads));
  }
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", Mlp(width, static_cast<int64_t>(width * mlp_ratio), Activation::gelu));
}

torch::Tensor DecoderBlockImpl::forward(torch::Tensor x, const torch::Tensor& memory,
                                        const torch::Tensor& memory_mask, const torch::Tensor& self_mask,
                                        LayerCache* cache) {
  auto h = ln_1(x);
  const auto [k, v] =
      cached_self_attention(cache, attn->packed_k(h, attn->k_proj->weight, attn->k_proj->bias),
                            attn->packed_v(h, attn->v_proj->weight, attn->v_proj->bias));
  x = x + attn(h, k, v, self_mask);
  if (cross_attn) {
    const auto [ck, cv] = cached_cross_attention(cache, [&] {
      TORCH_CHECK(memory.defined(), "a decoder block with cross-attention needs the encoder's tokens");
      return std::pair{cross_attn->packed_k(memory, cross_attn->k_proj->weight, cross_attn->k_proj->bias),
                       cross_attn->packed_v(memory, cross_attn->v_proj->weight, cross_attn->v_proj->bias)};
    });
    torch::Tensor mask;  // padded encoder tokens are never attended to
    if (memory_mask.defined())
      mask = torch::zeros(memory_mask.sizes(), x.options())
                 .masked_fill(memory_mask.logical_not(), -std::numeric_limits<float>::infinity())
                 .view({memory_mask.size(0), 1, 1, memory_mask.size(1)});
    x = x + cross_attn(ln_cross(x), ck, cv, mask);
  }
  return x + mlp(ln_2(x));
}

}  // namespace mmlearn
