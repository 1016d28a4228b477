// The fusion methods behind make_fusion (one maker each), and the pieces several of them share.
#pragma once

#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "mmlearn/blocks/transformer.h"
#include "mmlearn/fusion/fusion.h"

namespace mmlearn::fusion {

std::shared_ptr<FusionImpl> make_concat(const FusionConfig& config);             // early.cpp
std::shared_ptr<FusionImpl> make_joint_transformer(const FusionConfig& config);  // early.cpp
std::shared_ptr<FusionImpl> make_late(const FusionConfig& config);               // late.cpp (all four)
std::shared_ptr<FusionImpl> make_cross_attention(const FusionConfig& config);    // attention.cpp
std::shared_ptr<FusionImpl> make_bottleneck(const FusionConfig& config);         // attention.cpp
std::shared_ptr<FusionImpl> make_gated(const FusionConfig& config);              // multiplicative.cpp
std::shared_ptr<FusionImpl> make_tensor(const FusionConfig& config);             // multiplicative.cpp
std::shared_ptr<FusionImpl> make_low_rank(const FusionConfig& config);           // multiplicative.cpp
std::shared_ptr<FusionImpl> make_film(const FusionConfig& config);               // multiplicative.cpp

// A learned stand-in per modality for an absent pooled vector: the layers after it see "missing", not a
// zero vector that a present input could also produce.
struct MissingVectorsImpl : torch::nn::Module {
  MissingVectorsImpl(const std::vector<std::string>& modalities, int64_t dim);
  // inputs[m].pooled where present, the stand-in elsewhere -> [B, dim].
  torch::Tensor pooled_or_missing(const ModalityOutputs& inputs, const std::string& modality, int64_t batch);
  // Each modality's in config order, concatenated -> [B, M * dim].
  torch::Tensor concat(const ModalityOutputs& inputs, const std::vector<std::string>& modalities,
                       int64_t batch);

  std::map<std::string, torch::Tensor> vectors;
};
TORCH_MODULE(MissingVectors);

// Additive attention mask [B, 1, 1, N] from a key mask [B, N]: keys that are not real get -inf.
torch::Tensor key_padding_mask(const torch::Tensor& key_mask, const torch::TensorOptions& options);

// Multi-head attention of queries x [B, T, D] over a different sequence y [B, S, D] (keys and values), with
// an additive key mask [B, 1, 1, S].
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& mask);

  int64_t dim, heads;
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, out{nullptr};
};
TORCH_MODULE(CrossAttention);

// A modality's summary after a fusion changed its tokens: the encoder's own pooled vector plus the mean of
// what the fusion added to its tokens. Fusion so refines the summary its encoder made (max-pooled image
// features, the text's end-of-text state) instead of replacing it by a plain token mean, which learns
// local evidence slowly.
torch::Tensor updated_pooled(const EncoderOutput& input, const torch::Tensor& updated_tokens);

// An input's tokens, or an empty [B, 0, D] sequence when the modality is not in the map.
EncoderOutput tokens_or_empty(const ModalityOutputs& inputs, const std::string& modality, int64_t batch,
                              int64_t dim);

}  // namespace mmlearn::fusion
