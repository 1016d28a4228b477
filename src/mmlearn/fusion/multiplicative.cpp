// Hybrid fusions by multiplicative interaction of pooled features: gates, outer products, modulation.
#include <torch/torch.h>

#include "mmlearn/fusion/methods.h"

namespace mmlearn::fusion {
namespace {

// gated — gated multimodal units: each modality's tanh features, mixed by gates computed from all of them
// (Arevalo et al., "Gated Multimodal Units for Information Fusion", 2017; softmax gates for more than two
// modalities). An absent modality gets no gate weight.
struct GatedFusion : FusionImpl {
  explicit GatedFusion(const FusionConfig& c) : FusionImpl(c) {
    for (const auto& m : c.modalities)
      features.push_back(register_module("features_" + m, torch::nn::Linear(c.dim, c.hidden)));
    const auto M = int64_t(c.modalities.size());
    gate = register_module("gate", torch::nn::Linear(M * c.dim, M));
    missing = register_module("missing", MissingVectors(c.modalities, c.dim));
    output_dim = c.hidden;
  }
  EncoderOutput fuse(const ModalityOutputs& inputs) override {
    const int64_t batch = batch_size(inputs);
    std::vector<torch::Tensor> h, present;
    for (size_t i = 0; i < config.modalities.size(); ++i) {
      h.push_back(torch::tanh(features[i](missing->pooled_or_missing(inputs, config.modalities[i], batch))));
      present.push_back(presence(inputs, config.modalities[i], batch));
    }
    auto mask = torch::stack(present, 1);  // [B, M]
    auto z = torch::softmax(
        gate(missing->concat(inputs, config.modalities, batch)).masked_fill(mask.logical_not(), -INFINITY),
        1);
    auto fused = (torch::stack(h, 1) * z.unsqueeze(-1)).sum(1);
    return {fused.unsqueeze(1), torch::ones({batch, 1}, torch::kBool), fused};
  }
  std::vector<torch::nn::Linear> features;
  torch::nn::Linear gate{nullptr};
  MissingVectors missing{nullptr};
};

// Each modality's projection with a constant 1 appended, [W x; 1]. An absent modality is [0, ..., 0, 1]: the
// outer product then keeps exactly the terms that do not involve it (TFN and LMF's own treatment).
torch::Tensor with_one(const torch::Tensor& projected, const torch::Tensor& present) {
  auto x = projected * present.to(projected.dtype()).unsqueeze(1);
  return torch::cat({x, torch::ones({x.size(0), 1}, x.options())}, 1);
}

// tensor — the outer product of the modalities' [features; 1] vectors, so the head sees every unimodal,
// bimodal and trimodal product (Tensor Fusion Network: Zadeh et al., 2017).
struct TensorFusion : FusionImpl {
  explicit TensorFusion(const FusionConfig& c) : FusionImpl(c) {
    output_dim = 1;
    for (const auto& m : c.modalities) {
      projections.push_back(register_module("proj_" + m, torch::nn::Linear(c.dim, c.tensor_dim)));
      output_dim *= c.tensor_dim + 1;
    }
  }
  EncoderOutput fuse(const ModalityOutputs& inputs) override {
    const int64_t batch = batch_size(inputs);
    torch::Tensor product;
    for (size_t i = 0; i < config.modalities.size(); ++i) {
      const auto& m = config.modalities[i];
      auto z = with_one(projections[i](tokens_or_empty(inputs, m, batch, config.dim).pooled),
                        presence(inputs, m, batch));
      product = product.defined() ? (product.unsqueeze(2) * z.unsqueeze(1)).flatten(1) : z;
    }
    return {product.unsqueeze(1), torch::ones({batch, 1}, torch::kBool), product};
  }
  std::vector<torch::nn::Linear> projections;
};

// low-rank — tensor fusion with the weight tensor factorised into `rank` modality-specific factors, so the
// outer product is never formed (Low-rank Multimodal Fusion: Liu et al., 2018).
struct LowRankFusion : FusionImpl {
  explicit LowRankFusion(const FusionConfig& c) : FusionImpl(c) {
    for (const auto& m : c.modalities)  // a Linear on x with bias is W [x; 1]
      factors.push_back(register_module("factor_" + m, torch::nn::Linear(c.dim, c.rank * c.hidden)));
    rank_weights = register_parameter("rank_weights", torch::full({1, c.rank, 1}, 1.0 / double(c.rank)));
    bias = register_parameter("bias", torch::zeros({c.hidden}));
    output_dim = c.hidden;
  }
  EncoderOutput fuse(const ModalityOutputs& inputs) override {
    const int64_t batch = batch_size(inputs);
    torch::Tensor product;
    for (size_t i = 0; i < config.modalities.size(); ++i) {
      const auto& m = config.modalities[i];
      auto x = tokens_or_empty(inputs, m, batch, config.dim).pooled *
               presence(inputs, m, batch).unsqueeze(1);  // absent: [0; 1]
      auto f = factors[i](x).view({batch, config.rank, config.hidden});
      product = product.defined() ? product * f : f;
    }
    auto fused = (product * rank_weights).sum(1) + bias;
    return {fused.unsqueeze(1), torch::ones({batch, 1}, torch::kBool), fused};
  }
  std::vector<torch::nn::Linear> factors;
  torch::Tensor rank_weights, bias;
};

// film — feature-wise linear modulation: every modality's tokens are scaled and shifted by the others'
// pooled features before an MLP (Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer",
// 2018; here in every direction). The conditioning sums the partners present; with none, the scale is 1 and
// the shift 0. The modulated MLP's output passes a tanh gate that starts at zero, as in cross-attention.
struct FilmFusion : FusionImpl {
  explicit FilmFusion(const FusionConfig& c) : FusionImpl(c) {
    auto no_bias = [&] { return torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.dim).bias(false)); };
    for (const auto& m : c.modalities) {
      condition.emplace(m, register_module("cond_" + m, torch::nn::Linear(c.dim, c.dim)));
      scale.emplace(m, register_module("scale_" + m, no_bias()));
      shift.emplace(m, register_module("shift_" + m, no_bias()));
      ln.emplace(m, register_module("ln_" + m, torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim}))));
      mlp.emplace(m, register_module("mlp_" + m, Mlp(c.dim, 4 * c.dim, Activation::gelu)));
      gate[m] = register_parameter("gate_" + m, torch::zeros({1}));
    }
    missing = register_module("missing", MissingVectors(c.modalities, c.dim));
    output_dim = int64_t(c.modalities.size()) * c.dim;
  }
  EncoderOutput fuse(const ModalityOutputs& inputs) override {
    const int64_t batch = batch_size(inputs);
    ModalityOutputs modulated;
    std::vector<torch::Tensor> tokens, masks;
    for (const auto& [m, out] : inputs) {
      auto context = torch::zeros({batch, config.dim}, out.pooled.options());
      for (const auto& [other, partner] : inputs)
        if (other != m)
          context = context + condition.at(other)(partner.pooled) *
                                  partner.mask.any(1).to(context.dtype()).unsqueeze(1);
      auto gamma = 1 + scale.at(m)(context).unsqueeze(1), beta = shift.at(m)(context).unsqueeze(1);
      auto x = out.tokens + torch::tanh(gate[m]) * mlp.at(m)(gamma * ln.at(m)(out.tokens) + beta);
      modulated[m] = {x, out.mask, updated_pooled(out, x)};
      tokens.push_back(x);
      masks.push_back(out.mask);
    }
    return {torch::cat(tokens, 1), torch::cat(masks, 1),
            missing->concat(modulated, config.modalities, batch)};
  }
  std::map<std::string, torch::nn::Linear> condition, scale, shift;
  std::map<std::string, torch::nn::LayerNorm> ln;
  std::map<std::string, Mlp> mlp;
  std::map<std::string, torch::Tensor> gate;
  MissingVectors missing{nullptr};
};

}  // namespace

std::shared_ptr<FusionImpl> make_gated(const FusionConfig& c) { return std::make_shared<GatedFusion>(c); }
std::shared_ptr<FusionImpl> make_tensor(const FusionConfig& c) { return std::make_shared<TensorFusion>(c); }
std::shared_ptr<FusionImpl> make_low_rank(const FusionConfig& c) {
  return std::make_shared<LowRankFusion>(c);
}
std::shared_ptr<FusionImpl> make_film(const FusionConfig& c) { return std::make_shared<FilmFusion>(c); }

}  // namespace mmlearn::fusion
