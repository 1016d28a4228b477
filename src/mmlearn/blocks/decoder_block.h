// The pre-norm transformer decoder block: causal self-attention, cross-attention to an encoder's tokens (when
// built with it), then the MLP, each around a residual. Keys and values of the positions already seen stay in
// a KVCache between calls, so that generation feeds one new token a step; cross-attention's keys and values
// are computed once from the encoder's tokens. Text decoders (heads/text_decoder.h) and the querying
// transformer of BLIP-2's connector (heads/connector.h) are stacks of it.
//
//   mmlearn::DecoderBlock block(256, 4, 4.0, /*cross_attention=*/true);
//   mmlearn::LayerCache cache;
//   auto y = block->forward(x, memory, memory_mask, causal_mask, &cache);  // x [B, T, D], memory [B, N, D]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <functional>
#include <utility>
#include <vector>

#include "mmlearn/blocks/transformer.h"

namespace mmlearn {

// One layer's cached keys and values [B, S, D]: those of self-attention grow with every call, those of
// cross-attention are made on the first.
struct LayerCache {
  torch::Tensor self_k, self_v, cross_k, cross_v;
};

// Self-attention's keys and values [B, S, D]: those cached (if any) followed by the new positions' `k` and
// `v`, which join the cache. Without a cache, just `k` and `v`.
std::pair<torch::Tensor, torch::Tensor> cached_self_attention(LayerCache* cache, torch::Tensor k,
                                                              torch::Tensor v);
// Cross-attention's keys and values: from the cache, or made by `make` (and cached).
std::pair<torch::Tensor, torch::Tensor> cached_cross_attention(
    LayerCache* cache, const std::function<std::pair<torch::Tensor, torch::Tensor>()>& make);

struct KVCache {
  std::vector<LayerCache> layers;
  int64_t length = 0;  // positions seen so far
  bool empty() const { return length == 0; }
  // Keeps batch rows `rows` (int64 [B']), repeated or reordered as given: beam search expands a row into its
  // beams, then follows the hypotheses it keeps.
  void select(const torch::Tensor& rows);
};

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t width, int64_t heads);
  // Queries from x [B, T, D] over keys k and values v [B, S, D]; `mask` additive, broadcast to [B, H, T, S].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask);

  int64_t heads;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  PackedLinear packed_q, packed_k, packed_v, packed_out;
};
TORCH_MODULE(Attention);

struct DecoderBlockImpl : torch::nn::Module {
  DecoderBlockImpl(int64_t width, int64_t heads, double mlp_ratio, bool cross_attention);
  // x [B, T, D]. memory [B, N, D] and memory_mask [B, N] (true where a token is real, or undefined) feed
  // cross-attention; self_mask is additive [T, S] (causal_mask) or undefined (every position sees every
  // other). With a cache, x follows the cached positions and its keys and values join them.
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& memory, const torch::Tensor& memory_mask,
                        const torch::Tensor& self_mask, LayerCache* cache = nullptr);

  torch::nn::LayerNorm ln_1{nullptr}, ln_cross{nullptr}, ln_2{nullptr};
  Attention attn{nullptr}, cross_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderBlock);

}  // namespace mmlearn
