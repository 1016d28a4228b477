#include "mmlearn/fusion/fusion.h"

#include <torch/torch.h>

#include <cmath>

#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/fusion/methods.h"

namespace mmlearn {

const std::vector<FusionMethodInfo>& fusion_catalogue() {
  static const std::vector<FusionMethodInfo> methods = {
      {"concat", "early", "pooled features side by side, then the head's MLP"},
      {"joint-transformer", "early", "all tokens, tagged by modality, in one transformer (ViLT, 2021)"},
      {"late-mean", "late", "mean of the per-modality class distributions"},
      {"late-weighted", "late", "learned weights over the per-modality distributions"},
      {"product-of-experts", "late", "product of the per-modality distributions (Hinton, 2002)"},
      {"stacking", "late", "a learned combiner over per-modality predictions (Wolpert, 1992)"},
      {"cross-attention", "hybrid", "each modality's tokens attend to the others' (MulT, 2019)"},
      {"gated", "hybrid", "gated multimodal units (Arevalo et al., 2017)"},
      {"tensor", "hybrid", "outer product of [features; 1] vectors (Tensor Fusion Network, 2017)"},
      {"low-rank", "hybrid", "tensor fusion with low-rank factors (LMF, 2018)"},
      {"bottleneck", "hybrid", "modalities exchange through shared bottleneck tokens (MBT, 2021)"},
      {"film", "hybrid", "each modality's tokens scaled and shifted by the others (FiLM, 2018)"}};
  return methods;
}

const std::vector<std::string>& fusion_methods() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& m : fusion_catalogue()) out.push_back(m.name);
    return out;
  }();
  return names;
}

std::string canonical_fusion_method(const std::string& name) {
  if (name == "late") return "late-mean";
  for (const auto& m : fusion_methods())
    if (m == name) return m;
  throw Error(str_cat("unknown fusion \"", name, "\" (choose one of: ", join(fusion_methods()),
                      "; \"late\" = late-mean)"));
}

bool is_late_fusion(const std::string& method) {
  for (const auto& m : fusion_catalogue())
    if (m.name == method) return m.family == "late";
  return false;
}

nlohmann::json to_json(const FusionConfig& c) {
  return {{"method", c.method},
          {"modalities", c.modalities},
          {"dim", c.dim},
          {"hidden", c.hidden},
          {"n_outputs", c.n_outputs},
          {"heads", c.heads},
          {"layers", c.layers},
          {"tensor_dim", c.tensor_dim},
          {"rank", c.rank},
          {"bottleneck_tokens", c.bottleneck_tokens}};
}

FusionConfig fusion_config_from_json(const nlohmann::json& j, const std::string& where) {
  check(j.is_object(), where, ": \"fusion\" must be an object");
  FusionConfig c;
  read_field(j, "method", c.method, where);
  read_field(j, "modalities", c.modalities, where);
  read_field(j, "dim", c.dim, where);
  read_field(j, "hidden", c.hidden, where);
  read_field(j, "n_outputs", c.n_outputs, where);
  read_field(j, "heads", c.heads, where);
  read_field(j, "layers", c.layers, where);
  read_field(j, "tensor_dim", c.tensor_dim, where);
  read_field(j, "rank", c.rank, where);
  read_field(j, "bottleneck_tokens", c.bottleneck_tokens, where);
  return c;
}

int64_t batch_size(const ModalityOutputs& inputs) {
  check(!inputs.empty(), "fusion: no modality given");
  return inputs.begin()->second.pooled.size(0);
}

torch::Tensor presence(const ModalityOutputs& inputs, const std::string& modality, int64_t batch) {
  auto it = inputs.find(modality);
  if (it == inputs.end()) return torch::zeros({batch}, torch::kBool);
  return it->second.mask.any(1);
}

torch::Tensor masked_mean(const torch::Tensor& tokens, const torch::Tensor& mask) {
  auto weight = mask.to(tokens.dtype()).unsqueeze(-1);
  return (tokens * weight).sum(1) / weight.sum(1).clamp_min(1.0);
}

EncoderOutput FusionImpl::forward(const ModalityOutputs& inputs) {
  const int64_t batch = batch_size(inputs);
  torch::Tensor any_present = torch::zeros({batch}, torch::kBool);
  for (const auto& [name, out] : inputs) {
    check(std::find(config.modalities.begin(), config.modalities.end(), name) != config.modalities.end(),
          "fusion ", config.method, ": modality \"", name, "\" is not one it was built for");
    check(out.tokens.dim() == 3 && out.tokens.size(0) == batch && out.tokens.size(2) == config.dim, "fusion ",
          config.method, ": ", name, " tokens must be [", batch, ", N, ", config.dim, "], got ",
          out.tokens.sizes());
    check(out.mask.dim() == 2 && out.mask.size(0) == batch && out.mask.size(1) == out.tokens.size(1),
          "fusion ", config.method, ": ", name, " mask must be [", batch, ", ", out.tokens.size(1), "]");
    check(out.pooled.dim() == 2 && out.pooled.size(0) == batch && out.pooled.size(1) == config.dim, "fusion ",
          config.method, ": ", name, " pooled must be [", batch, ", ", config.dim, "]");
    any_present = any_present | out.mask.any(1);
  }
  check(any_present.all().item<bool>(), "fusion ", config.method, ": an example has none of its modalities (",
        batch - any_present.sum().item<int64_t>(), " of ", batch, " examples); at least one is needed");
  // What sits behind a mask cannot reach the output, not even as a NaN times a zero weight: the methods
  // mask, and this makes sure masked values are finite.
  ModalityOutputs clean;
  for (const auto& [name, out] : inputs) {
    clean[name] = {out.tokens.masked_fill(out.mask.logical_not().unsqueeze(-1), 0), out.mask,
                   out.pooled.masked_fill(out.mask.any(1).logical_not().unsqueeze(-1), 0)};
  }
  return fuse(clean);
}

std::shared_ptr<FusionImpl> make_fusion(const FusionConfig& given) {
  FusionConfig c = given;
  c.method = canonical_fusion_method(c.method);
  check(!c.modalities.empty(), "fusion ", c.method, ": no modalities");
  for (size_t i = 0; i < c.modalities.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      check(c.modalities[i] != c.modalities[j], "fusion: modality \"", c.modalities[i], "\" given twice");
  check(c.dim >= 1 && c.hidden >= 1 && c.n_outputs >= 1 && c.heads >= 1 && c.layers >= 1 &&
            c.tensor_dim >= 1 && c.rank >= 1 && c.bottleneck_tokens >= 1,
        "fusion ", c.method, ": widths, heads, layers, rank and token counts must be at least 1");
  check(c.dim % c.heads == 0, "fusion ", c.method, ": dim ", c.dim, " is not divisible by ", c.heads,
        " heads");
  if (c.method == "tensor") {
    double size = 1;
    for (size_t i = 0; i < c.modalities.size(); ++i) size *= double(c.tensor_dim + 1);
    check(size <= 1e6, "fusion tensor: the fused tensor would have ", size,
          " entries; lower tensor_dim or use low-rank");
  }
  if (c.method == "concat") return fusion::make_concat(c);
  if (c.method == "joint-transformer") return fusion::make_joint_transformer(c);
  if (is_late_fusion(c.method)) return fusion::make_late(c);
  if (c.method == "cross-attention") return fusion::make_cross_attention(c);
  if (c.method == "bottleneck") return fusion::make_bottleneck(c);
  if (c.method == "gated") return fusion::make_gated(c);
  if (c.method == "tensor") return fusion::make_tensor(c);
  if (c.method == "low-rank") return fusion::make_low_rank(c);
  return fusion::make_film(c);
}

namespace fusion {

MissingVectorsImpl::MissingVectorsImpl(const std::vector<std::string>& modalities, int64_t dim) {
  for (const auto& m : modalities)
    vectors[m] = register_parameter("missing_" + m, torch::randn({dim}) * 0.02);
}

torch::Tensor MissingVectorsImpl::pooled_or_missing(const ModalityOutputs& inputs,
                                                    const std::string& modality, int64_t batch) {
  const auto& missing = vectors.at(modality);
  auto it = inputs.find(modality);
  if (it == inputs.end()) return missing.unsqueeze(0).expand({batch, missing.size(0)});
  return torch::where(it->second.mask.any(1).unsqueeze(1), it->second.pooled, missing.unsqueeze(0));
}

torch::Tensor MissingVectorsImpl::concat(const ModalityOutputs& inputs,
                                         const std::vector<std::string>& modalities, int64_t batch) {
  std::vector<torch::Tensor> parts;
  for (const auto& m : modalities) parts.push_back(pooled_or_missing(inputs, m, batch));
  return torch::cat(parts, 1);
}

torch::Tensor key_padding_mask(const torch::Tensor& key_mask, const torch::TensorOptions& options) {
  return torch::zeros(key_mask.sizes(), options)
      .masked_fill(key_mask.logical_not(), -std::numeric_limits<float>::infinity())
      .unsqueeze(1)
      .unsqueeze(1);
}

CrossAttentionImpl::CrossAttentionImpl(int64_t dim_, int64_t heads_) : dim(dim_), heads(heads_) {
  q = register_module("q", torch::nn::Linear(dim, dim));
  k = register_module("k", torch::nn::Linear(dim, dim));
  v = register_module("v", torch::nn::Linear(dim, dim));
  out = register_module("out", torch::nn::Linear(dim, dim));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& y,
                                          const torch::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), S = y.size(1), hd = dim / heads;
  auto split = [&](const torch::Tensor& t, int64_t n) { return t.view({B, n, heads, hd}).transpose(1, 2); };
  auto scores = torch::matmul(split(q(x), T), split(k(y), S).transpose(-2, -1)) / std::sqrt(double(hd));
  auto attended = torch::matmul(torch::softmax(scores + mask, -1), split(v(y), S));  // [B, H, T, hd]
  return out(attended.transpose(1, 2).reshape({B, T, dim}));
}

torch::Tensor updated_pooled(const EncoderOutput& input, const torch::Tensor& updated_tokens) {
  return input.pooled + masked_mean(updated_tokens - input.tokens, input.mask);
}

EncoderOutput tokens_or_empty(const ModalityOutputs& inputs, const std::string& modality, int64_t batch,
                              int64_t dim) {
  auto it = inputs.find(modality);
  if (it != inputs.end()) return it->second;
  const auto options = inputs.begin()->second.tokens.options();
  return {torch::zeros({batch, 0, dim}, options), torch::zeros({batch, 0}, options.dtype(torch::kBool)),
          torch::zeros({batch, dim}, options)};
}

}  // namespace fusion
}  // namespace mmlearn
