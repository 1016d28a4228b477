// Early fusion: the modalities are joined before any joint processing.
#include <torch/torch.h>

#include "mmlearn/fusion/methods.h"

namespace mmlearn::fusion {
namespace {

// concat — pooled features side by side for the head's MLP (the early-fusion baseline of Baltrušaitis,
// Ahuja & Morency, "Multimodal Machine Learning: A Survey and Taxonomy", 2019). Absent: a learned stand-in.
struct ConcatFusion : FusionImpl {
  explicit ConcatFusion(const FusionConfig& c) : FusionImpl(c) {
    missing = register_module("missing", MissingVectors(c.modalities, c.dim));
    output_dim = int64_t(c.modalities.size()) * c.dim;
  }
  EncoderOutput fuse(const ModalityOutputs& inputs) override {
    auto pooled = missing->concat(inputs, config.modalities, batch_size(inputs));
    return {pooled.unsqueeze(1), torch::ones({pooled.size(0), 1}, torch::kBool), pooled};
  }
  MissingVectors missing{nullptr};
};

// joint-transformer — every modality's tokens, tagged with a learned modality embedding, in one sequence
// through a transformer (single-stream, as ViLT: Kim, Son & Kim, 2021), read out at a fusion token and, per
// modality, as the encoder's summary plus the mean change to its tokens behind a tanh gate that starts at
// zero (so training starts from the encoders' summaries, as in cross-attention). Absent tokens are masked
// out of attention; the fusion token is always there, so no row attends to nothing.
struct JointTransformerFusion : FusionImpl {
  explicit JointTransformerFusion(const FusionConfig& c) : FusionImpl(c) {
    cls = register_parameter("cls", torch::randn({1, 1, c.dim}) * 0.02);
    for (const auto& m : c.modalities) {
      type_embedding[m] = register_parameter("type_" + m, torch::randn({c.dim}) * 0.02);
      gate[m] = register_parameter("gate_" + m, torch::zeros({1}));
    }
    transformer = register_module(
        "transformer", Transformer(TransformerConfig{.width = c.dim, .layers = c.layers, .heads = c.heads}));
    ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim})));
    missing = register_module("missing", MissingVectors(c.modalities, c.dim));
    output_dim = int64_t(c.modalities.size() + 1) * c.dim;
  }
  EncoderOutput fuse(const ModalityOutputs& inputs) override {
    const int64_t batch = batch_size(inputs);
    std::vector<torch::Tensor> tokens{cls.expand({batch, 1, config.dim})};
    std::vector<torch::Tensor> masks{torch::ones({batch, 1}, torch::kBool)};
    for (const auto& [m, in] : inputs) {
      tokens.push_back(in.tokens + type_embedding[m]);
      masks.push_back(in.mask);
    }
    auto mask = torch::cat(masks, 1);
    auto x = transformer(torch::cat(tokens, 1), key_padding_mask(mask, tokens[0].options()));
    ModalityOutputs updated;
    std::vector<torch::Tensor> out_tokens{x.slice(1, 0, 1)};
    int64_t offset = 1;
    for (const auto& [m, in] : inputs) {
      const int64_t n = in.tokens.size(1);
      auto t = in.tokens + torch::tanh(gate[m]) * (x.slice(1, offset, offset + n) - in.tokens);
      updated[m] = {t, in.mask, updated_pooled(in, t)};
      out_tokens.push_back(t);
      offset += n;
    }
    auto pooled = torch::cat({ln(x.select(1, 0)), missing->concat(updated, config.modalities, batch)}, 1);
    return {torch::cat(out_tokens, 1), mask, pooled};
  }
  torch::Tensor cls;
  std::map<std::string, torch::Tensor> type_embedding, gate;
  Transformer transformer{nullptr};
  torch::nn::LayerNorm ln{nullptr};
  MissingVectors missing{nullptr};
};

}  // namespace

std::shared_ptr<FusionImpl> make_concat(const FusionConfig& c) { return std::make_shared<ConcatFusion>(c); }
std::shared_ptr<FusionImpl> make_joint_transformer(const FusionConfig& c) {
  return std::make_shared<JointTransformerFusion>(c);
}

}  // namespace mmlearn::fusion
