// Composed image retrieval: a query is an image plus a text that says what to change ("make the circle red"),
// and the answer is the image that change would make. The Combiner is the learned fusion of CLIP4Cir
// (Baldrati et al., "Effective conditioned and composed image retrieval combining CLIP-based features",
// CVPR 2022, https://github.com/ABaldrati/CLIP4Cir/blob/master/src/combiner.py): it projects a frozen CLIP's
// image and text embeddings, mixes them through an MLP, and adds a learned convex blend of the two inputs, so
// that it starts near the arithmetic baseline (image + text) and learns what the sum misses.
//
// A composed model directory holds config.json ({"model_type": "composed", "combiner": {...}}),
// model.safetensors (the combiner) and clip/ (the CLIP model it composes, a copy: the directory is whole).
//
//   mmlearn::ComposedBundle m = mmlearn::load_composed("composed-run");
//   auto q = m.combiner->forward(image_embeds, text_embeds);     // [B, E], L2-normalized
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/core/precision.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/models/clip_pretrained.h"

namespace mmlearn {

struct CombinerConfig {
  int64_t dim = 512;              // the CLIP embedding's width
  int64_t projection_dim = 2048;  // each input's projection (CLIP4Cir: 4 x dim)
  int64_t hidden_dim = 4096;      // the MLP's (CLIP4Cir: 8 x dim)
  double dropout = 0.5;           // in training, after each projection and hidden layer
};
nlohmann::json to_json(const CombinerConfig& config);
// Range-checked; errors name `where` and the field.
CombinerConfig combiner_config_from_json(const nlohmann::json& j, const std::string& where);

// Dropout applied to a [B, D] activation; empty in evaluation. The trainer draws its masks from the run's
// generator so that a resumed run continues exactly.
using Dropout = std::function<torch::Tensor(const torch::Tensor&)>;

struct CombinerImpl : torch::nn::Module {
  explicit CombinerImpl(const CombinerConfig& config);
  // image_embeds, text_embeds: [B, dim], L2-normalized. Returns the query [B, dim], L2-normalized.
  torch::Tensor forward(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                        const Dropout& dropout = {});

  CombinerConfig config;
  torch::nn::Linear text_projection_layer{nullptr}, image_projection_layer{nullptr}, combiner_layer{nullptr},
      output_layer{nullptr};
  torch::nn::Sequential dynamic_scalar{nullptr};  // Linear, ReLU, Dropout, Linear, Sigmoid
};
TORCH_MODULE(Combiner);

struct ComposedBundle {
  ClipBundle clip;
  Combiner combiner{nullptr};
};

void save_composed(const std::filesystem::path& dir, const ComposedBundle& model);
ComposedBundle load_composed(const std::filesystem::path& dir);  // in evaluation mode

// The arithmetic baseline: normalize(image + text) of L2-normalized embeddings.
torch::Tensor arithmetic_query(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds);

// Edit triplets (data shapes --task edit): "image" the source, "text" the change, "target" the result,
// embedded by a CLIP ([N, E] each, fp32). A record whose fields are missing or whose images do not decode is
// skipped and listed, or is an error when `strict`.
struct EditFeatures {
  torch::Tensor images, texts, targets;
  std::vector<std::string> skipped;  // "file:line: why"
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};
EditFeatures embed_edit_triplets(ClipBundle& clip, const data::Manifest& manifest, int64_t limit = 0,
                                 bool strict = false, Precision precision = Precision::fp32);

}  // namespace mmlearn
