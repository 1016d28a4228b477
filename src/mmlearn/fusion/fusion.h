// Fusion: one call, `{modality -> EncoderOutput} -> EncoderOutput`, behind which early, late and hybrid
// methods swap freely (DESIGN.md). Every input shares one width `dim` (the model projects its encoders to
// it).
//
// A modality is absent for an example when its mask row is all false, and absent for the whole batch when it
// is not in the map. Absent inputs are masked, never zero-filled: whatever their tensors hold, the output
// does not change (each method says below how it leaves them out).
//
// What comes out: early and hybrid methods return features for a head (`pooled` [B, output_dim], and the
// tokens they attended over); late methods already predict: `pooled` [B, n_outputs] holds the combined
// logits, `tokens` [B, M, n_outputs] each modality's own logits and `mask` [B, M] which of them were present.
//
//   mmlearn::FusionConfig config{.method = "cross-attention", .modalities = {"image", "text"}, .dim = 64};
//   auto fusion = mmlearn::make_fusion(config);
//   mmlearn::EncoderOutput fused = fusion->forward({{"image", image_out}, {"text", text_out}});
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/blocks/encoder_output.h"

namespace mmlearn {

using ModalityOutputs = std::map<std::string, EncoderOutput>;

struct FusionConfig {
  std::string method = "concat";        // one of fusion_methods()
  std::vector<std::string> modalities;  // the order fixes parameter layout and concatenation order
  int64_t dim = 64;                     // width of every input (tokens and pooled)
  int64_t hidden = 64;                  // width of gated and low-rank outputs and of late heads
  int64_t n_outputs = 2;                // late methods: classes (or regression targets) they predict
  int64_t heads = 4;                    // attention methods
  int64_t layers = 1;                   // joint-transformer and bottleneck depth
  int64_t tensor_dim = 8;               // tensor: each modality is projected to this before the outer product
  int64_t rank = 4;                     // low-rank: rank of the factorised fusion tensor
  int64_t bottleneck_tokens = 4;        // bottleneck: shared tokens through which modalities exchange
};

nlohmann::json to_json(const FusionConfig& config);
FusionConfig fusion_config_from_json(const nlohmann::json& json, const std::string& where);

// The CLI names, in the order of the docs' table; "late" is accepted for "late-mean".
const std::vector<std::string>& fusion_methods();
struct FusionMethodInfo {
  std::string name, family, summary;  // family: early, late or hybrid
};
const std::vector<FusionMethodInfo>& fusion_catalogue();
// The canonical name, or an Error listing the methods.
std::string canonical_fusion_method(const std::string& name);
bool is_late_fusion(const std::string& method);

struct FusionImpl : torch::nn::Module {
  explicit FusionImpl(FusionConfig config) : config(std::move(config)) {}
  // Checks the inputs (known modalities, widths, batch, at least one present per example), then fuses.
  EncoderOutput forward(const ModalityOutputs& inputs);
  virtual EncoderOutput fuse(const ModalityOutputs& inputs) = 0;

  FusionConfig config;
  int64_t output_dim = 0;  // width of `pooled`
};

// Throws mmlearn::Error for an unknown method or a config it cannot build (no modalities, widths < 1).
std::shared_ptr<FusionImpl> make_fusion(const FusionConfig& config);

// Per-example presence [B] (bool) of `modality` in `inputs`: false where its mask row is empty or it is not
// in the map at all.
torch::Tensor presence(const ModalityOutputs& inputs, const std::string& modality, int64_t batch);
int64_t batch_size(const ModalityOutputs& inputs);
// Mean of tokens [B, N, D] over mask [B, N]; an empty row gives zeros (callers mask it out afterwards).
torch::Tensor masked_mean(const torch::Tensor& tokens, const torch::Tensor& mask);

}  // namespace mmlearn
