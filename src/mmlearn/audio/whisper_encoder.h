// Whisper's audio encoder (Radford et al., 2022): two convolutions over log-mel frames, sinusoidal positions
// and a pre-norm transformer, with the attention and block modules its decoder shares. It is the audio tower
// of three families: the speech recognizer (models/whisper.h), the audio–text model (models/clap.h) and the
// multimodal classifier. Parameters carry OpenAI's names (blocks.0.attn.query, conv1, ln_post, ...).
//
//   mmlearn::WhisperEncoder encoder(mmlearn::WhisperEncoderConfig{.n_state = 384, .n_head = 6});
//   auto states = encoder->forward(mel);   // [B, 80, 3000] -> [B, 1500, 384]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "mmlearn/blocks/packed_linear.h"

namespace mmlearn {

// The encoder's dimensions: OpenAI's n_mels, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer.
struct WhisperEncoderConfig {
  int64_t n_mels = 80;
  int64_t n_ctx = 1500;  // positions: 2 * n_ctx mel frames after the stride-2 convolution
  int64_t n_state = 512;
  int64_t n_head = 8;
  int64_t n_layer = 6;
  bool operator==(const WhisperEncoderConfig&) const = default;
};

// Keys and values of every decoder layer, kept between calls so that each step feeds only the new tokens.
// Cross-attention keys/values are computed once from the audio features.
struct WhisperKVCache {
  std::vector<torch::Tensor> self_k, self_v, cross_k, cross_v;
  int64_t length = 0;  // tokens seen so far
  bool empty() const { return length == 0; }
  // Keeps batch rows `index` (beam search reorders hypotheses).
  void select(const torch::Tensor& index);
  void clear() { *this = {}; }
};

struct WhisperAttentionImpl : torch::nn::Module {
  WhisperAttentionImpl(int64_t width, int64_t heads);
  // x [B, T, D]; keys/values from `source` ([B, S, D], cross-attention) or from x itself; `mask` additive
  // [T, S]; `k_cache`/`v_cache` (may be null) hold earlier keys/values and receive the new ones.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& source, const torch::Tensor& mask,
                        torch::Tensor* k_cache, torch::Tensor* v_cache, bool cross);

  int64_t heads;
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, out{nullptr};
  PackedLinear packed_query, packed_key, packed_value, packed_out;
};
TORCH_MODULE(WhisperAttention);

struct WhisperBlockImpl : torch::nn::Module {
  WhisperBlockImpl(int64_t width, int64_t heads, bool cross_attention);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& audio, const torch::Tensor& mask,
                        WhisperKVCache* cache, size_t layer);

  WhisperAttention attn{nullptr}, cross_attn{nullptr};
  torch::nn::LayerNorm attn_ln{nullptr}, cross_attn_ln{nullptr}, mlp_ln{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};  // registered as mlp.0 and mlp.2, OpenAI's Sequential
  PackedLinear packed_fc1, packed_fc2;
};
TORCH_MODULE(WhisperBlock);

struct WhisperEncoderImpl : torch::nn::Module {
  explicit WhisperEncoderImpl(const WhisperEncoderConfig& config);
  torch::Tensor forward(const torch::Tensor& mel);  // [B, n_mels, 2 * n_ctx] -> [B, n_ctx, n_state]

  torch::nn::Conv1d conv1{nullptr}, conv2{nullptr};
  torch::Tensor positional_embedding;  // sinusoids, a buffer
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm ln_post{nullptr};
};
TORCH_MODULE(WhisperEncoder);

// OpenAI's sinusoidal positions [length, channels] (max timescale 10000).
torch::Tensor whisper_sinusoids(int64_t length, int64_t channels);

}  // namespace mmlearn
