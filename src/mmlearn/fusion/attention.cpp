// Hybrid fusions by attention: modalities exchange information token by token inside the fusion.
#include <torch/torch.h>

#include "mmlearn/core/error.h"
#include "mmlearn/fusion/methods.h"

namespace mmlearn::fusion {
namespace {

torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}));
}

// cross-attention — each modality's tokens attend to the other modalities' tokens, in every direction, then
// an MLP (the crossmodal transformer of MulT: Tsai et al., 2019), both behind tanh gates that start at zero
// (Flamingo's gated cross-attention: Alayrac et al., 2022), so training starts from the encoders' own
// summaries and lets the other modalities in as they help. Absent tokens are masked out of the keys; a
// learned null key is always there, so a modality whose partners are all absent attends to it alone.
struct CrossAttentionFusion : FusionImpl {
  explicit CrossAttentionFusion(const FusionConfig& c) : FusionImpl(c) {
    null_token = register_parameter("null_token", torch::randn({1, 1, c.dim}) * 0.02);
    for (const auto& m : c.modalities) {
      type_embedding[m] = register_parameter("type_" + m, torch::randn({c.dim}) * 0.02);
      attention.emplace(m, register_module("attn_" + m, CrossAttention(c.dim, c.heads)));
      ln_query.emplace(m, register_module("ln_q_" + m, layer_norm(c.dim)));
      ln_key.emplace(m, register_module("ln_kv_" + m, layer_norm(c.dim)));
      ln_mlp.emplace(m, register_module("ln_mlp_" + m, layer_norm(c.dim)));
      mlp.emplace(m, register_module("mlp_" + m, Mlp(c.dim, 4 * c.dim, Activation::gelu)));
      attention_gate[m] = register_parameter("attn_gate_" + m, torch::zeros({1}));
      mlp_gate[m] = register_parameter("mlp_gate_" + m, torch::zeros({1}));
    }
    missing = register_module("missing", MissingVectors(c.modalities, c.dim));
    output_dim = int64_t(c.modalities.size()) * c.dim;
  }

  EncoderOutput fuse(const ModalityOutputs& inputs) override {
    const int64_t batch = batch_size(inputs);
    ModalityOutputs attended;
    std::vector<torch::Tensor> all_tokens, all_masks;
    for (const auto& m : config.modalities) {
      auto it = inputs.find(m);
      if (it == inputs.end()) continue;
      std::vector<torch::Tensor> keys{null_token.expand({batch, 1, config.dim})};
      std::vector<torch::Tensor> key_masks{torch::ones({batch, 1}, torch::kBool)};
      for (const auto& [other, out] : inputs) {
        if (other == m) continue;
        keys.push_back(out.tokens + type_embedding[other]);
        key_masks.push_back(out.mask);
      }
      auto kv = ln_key.at(m)(torch::cat(keys, 1));
      auto mask = key_padding_mask(torch::cat(key_masks, 1), kv.options());
      auto x = it->second.tokens +
               torch::tanh(attention_gate[m]) * attention.at(m)(ln_query.at(m)(it->second.tokens), kv, mask);
      x = x + torch::tanh(mlp_gate[m]) * mlp.at(m)(ln_mlp.at(m)(x));
      attended[m] = {x, it->second.mask, updated_pooled(it->second, x)};
      all_tokens.push_back(x);
      all_masks.push_back(it->second.mask);
    }
    return {torch::cat(all_tokens, 1), torch::cat(all_masks, 1),
            missing->concat(attended, config.modalities, batch)};
  }

  torch::Tensor null_token;
  std::map<std::string, torch::Tensor> type_embedding, attention_gate, mlp_gate;
  std::map<std::string, CrossAttention> attention;
  std::map<std::string, torch::nn::LayerNorm> ln_query, ln_key, ln_mlp;
  std::map<std::string, Mlp> mlp;
  MissingVectors missing{nullptr};
};

// bottleneck — each modality has its own transformer layers and they exchange only through a few shared
// bottleneck tokens, averaged over the modalities after every layer (MBT: Nagrani et al., "Attention
// Bottlenecks for Multimodal Fusion", 2021). An absent modality is left out of that average. What the layers
// change in each modality's tokens passes a tanh gate that starts at zero, as in cross-attention.
struct BottleneckFusion : FusionImpl {
  explicit BottleneckFusion(const FusionConfig& c) : FusionImpl(c) {
    bottleneck = register_parameter("bottleneck", torch::randn({1, c.bottleneck_tokens, c.dim}) * 0.02);
    const TransformerConfig block{.width = c.dim, .layers = 1, .heads = c.heads};
    for (int64_t l = 0; l < c.layers; ++l)
      for (const auto& m : c.modalities)
        blocks[m].push_back(register_module(str_cat("layer", l, "_", m), ResidualAttentionBlock(block)));
    for (const auto& m : c.modalities) gate[m] = register_parameter("gate_" + m, torch::zeros({1}));
    ln = register_module("ln", layer_norm(c.dim));
    missing = register_module("missing", MissingVectors(c.modalities, c.dim));
    output_dim = int64_t(c.modalities.size() + 1) * c.dim;
  }

  EncoderOutput fuse(const ModalityOutputs& inputs) override {
    const int64_t batch = batch_size(inputs), n_b = config.bottleneck_tokens;
    ModalityOutputs state = inputs;
    auto shared = bottleneck.expand({batch, n_b, config.dim});
    const auto bottleneck_mask = torch::ones({batch, n_b}, torch::kBool);
    for (int64_t l = 0; l < config.layers; ++l) {
      auto sum = torch::zeros_like(shared);
      auto count = torch::zeros({batch, 1, 1}, shared.options());
      for (auto& [m, out] : state) {
        const int64_t n = out.tokens.size(1);
        auto x = torch::cat({out.tokens, shared}, 1);
        auto mask = key_padding_mask(torch::cat({out.mask, bottleneck_mask}, 1), x.options());
        x = blocks[m][size_t(l)]->forward(x, mask);
        out.tokens = x.slice(1, 0, n);
        auto present = out.mask.any(1).to(x.dtype()).view({batch, 1, 1});
        sum = sum + x.slice(1, n) * present;
        count = count + present;
      }
      shared = sum / count;  // every example has a modality present (FusionImpl::forward checks)
    }
    std::vector<torch::Tensor> tokens{shared}, masks{bottleneck_mask};
    for (auto& [m, out] : state) {
      const auto& in = inputs.at(m);
      out.tokens = in.tokens + torch::tanh(gate[m]) * (out.tokens - in.tokens);
      out.pooled = updated_pooled(in, out.tokens);
      tokens.push_back(out.tokens);
      masks.push_back(out.mask);
    }
    auto pooled = torch::cat({missing->concat(state, config.modalities, batch), ln(shared).mean(1)}, 1);
    return {torch::cat(tokens, 1), torch::cat(masks, 1), pooled};
  }

  torch::Tensor bottleneck;
  std::map<std::string, std::vector<ResidualAttentionBlock>> blocks;
  std::map<std::string, torch::Tensor> gate;  // tanh-gated change to each modality's tokens, from zero
  torch::nn::LayerNorm ln{nullptr};
  MissingVectors missing{nullptr};
};

}  // namespace

std::shared_ptr<FusionImpl> make_cross_attention(const FusionConfig& c) {
  return std::make_shared<CrossAttentionFusion>(c);
}
std::shared_ptr<FusionImpl> make_bottleneck(const FusionConfig& c) {
  return std::make_shared<BottleneckFusion>(c);
}

}  // namespace mmlearn::fusion
