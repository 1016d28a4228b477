#include "mmlearn/models/composed.h"

#include <torch/nn/functional/normalization.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/precision.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/models/clip_import.h"
#include "mmlearn/models/clip_pixels.h"
#include "mmlearn/models/weight_files.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

json to_json(const CombinerConfig& c) {
  return {{"dim", c.dim},
          {"projection_dim", c.projection_dim},
          {"hidden_dim", c.hidden_dim},
          {"dropout", c.dropout}};
}

CombinerConfig combiner_config_from_json(const json& j, const std::string& where) {
  check(j.is_object(), where, ": \"combiner\" must be an object");
  CombinerConfig c;
  read_field(j, "dim", c.dim, where);
  read_field(j, "projection_dim", c.projection_dim, where);
  read_field(j, "hidden_dim", c.hidden_dim, where);
  read_field(j, "dropout", c.dropout, where);
  for (const auto& [name, value] :
       {std::pair{"dim", c.dim}, {"projection_dim", c.projection_dim}, {"hidden_dim", c.hidden_dim}})
    check(value >= 1 && value <= 65536, where, ": combiner.", name, " must be in [1, 65536] (got ", value,
          ")");
  check(c.dropout >= 0 && c.dropout < 1, where, ": combiner.dropout must be in [0, 1) (got ", c.dropout, ")");
  return c;
}

CombinerImpl::CombinerImpl(const CombinerConfig& c) : config(c) {
  text_projection_layer =
      register_module("text_projection_layer", torch::nn::Linear(c.dim, c.projection_dim));
  image_projection_layer =
      register_module("image_projection_layer", torch::nn::Linear(c.dim, c.projection_dim));
  combiner_layer = register_module("combiner_layer", torch::nn::Linear(2 * c.projection_dim, c.hidden_dim));
  output_layer = register_module("output_layer", torch::nn::Linear(c.hidden_dim, c.dim));
  // The dropout inside is applied by forward()'s `dropout` (index 2 is skipped there).
  dynamic_scalar = register_module(
      "dynamic_scalar", torch::nn::Sequential(torch::nn::Linear(2 * c.projection_dim, c.hidden_dim),
                                              torch::nn::ReLU(), torch::nn::Dropout(0.0),
                                              torch::nn::Linear(c.hidden_dim, 1), torch::nn::Sigmoid()));
}

torch::Tensor CombinerImpl::forward(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                                    const Dropout& dropout) {
  auto drop = [&](const torch::Tensor& x) { return dropout ? dropout(x) : x; };
  auto t = drop(torch::relu(text_projection_layer(text_embeds)));
  auto i = drop(torch::relu(image_projection_layer(image_embeds)));
  auto raw = torch::cat({t, i}, -1);
  auto combined = drop(torch::relu(combiner_layer(raw)));
  auto hidden = drop(torch::relu(dynamic_scalar[0]->as<torch::nn::Linear>()->forward(raw)));
  auto lambda = torch::sigmoid(dynamic_scalar[3]->as<torch::nn::Linear>()->forward(hidden));
  auto query = output_layer(combined) + lambda * text_embeds + (1 - lambda) * image_embeds;
  return torch::nn::functional::normalize(full_precision(query),
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

torch::Tensor arithmetic_query(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds) {
  return torch::nn::functional::normalize(image_embeds + text_embeds,
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

void save_composed(const fs::path& dir, const ComposedBundle& m) {
  fs::create_directories(dir);
  save_clip(dir / "clip", m.clip.model, m.clip.tokenizer);
  save_parameters(*m.combiner, dir / "model.safetensors", {{"format", "pt"}, {"producer", "mmlearn"}});
  // Last: a directory is a composed model once its config says so.
  write_file_atomic(
      dir / "config.json",
      json{{"model_type", "composed"}, {"combiner", to_json(m.combiner->config)}}.dump(2) + "\n");
}

ComposedBundle load_composed(const fs::path& dir) {
  for (const char* name : {"config.json", "model.safetensors", "clip"})
    check(fs::exists(dir / name), "model directory ", dir.string(), " has no ", name,
          " (a composed model directory holds config.json, model.safetensors and clip/)");
  const fs::path config_path = dir / "config.json";
  const json config = read_json_file(config_path);
  check(config.is_object() && config.contains("combiner"), config_path.string(),
        ": missing object field \"combiner\"");
  const CombinerConfig c = combiner_config_from_json(config["combiner"], config_path.string());
  ComposedBundle m{load_clip(dir / "clip"), nullptr};
  check(c.dim == m.clip.model->config.embed_dim, config_path.string(), ": combiner.dim ", c.dim,
        " differs from the CLIP model's embedding width ", m.clip.model->config.embed_dim);
  const TensorMap weights = load_safetensors(dir / "model.safetensors");
  check_config_fits_weights(
      double(c.projection_dim) * c.dim * 2 + double(c.hidden_dim) * c.projection_dim * 4, weights,
      config_path.string(), (dir / "model.safetensors").string());
  m.combiner = Combiner(c);
  load_parameters(*m.combiner, weights, (dir / "model.safetensors").string());
  m.combiner->eval();
  return m;
}

EditFeatures embed_edit_triplets(ClipBundle& clip, const data::Manifest& manifest, int64_t limit, bool strict,
                                 Precision precision) {
  const ClipConfig& config = clip.model->config;
  std::vector<torch::Tensor> images, targets, texts;
  std::vector<torch::Tensor> chunk_images, chunk_targets;
  std::vector<std::string> chunk_texts;
  EditFeatures out;
  auto flush = [&] {
    if (chunk_texts.empty()) return;
    images.push_back(embed_pixels(clip.model, torch::stack(chunk_images), precision));
    targets.push_back(embed_pixels(clip.model, torch::stack(chunk_targets), precision));
    texts.push_back(embed_texts(
        clip.model, tokenize_batch(clip.tokenizer, chunk_texts, config.text.context_length), precision));
    chunk_images.clear();
    chunk_targets.clear();
    chunk_texts.clear();
  };
  int64_t kept = 0;
  for (const auto& record : manifest.records) {
    if (limit > 0 && kept == limit) break;
    try {
      const std::string text = data::string_field(manifest, record, "text");
      check(!text.empty(), manifest.where(record), ": field \"text\" is empty");
      auto source = load_clip_pixels(config, manifest.resolve(data::string_field(manifest, record, "image")));
      auto target =
          load_clip_pixels(config, manifest.resolve(data::string_field(manifest, record, "target")));
      chunk_images.push_back(source);
      chunk_targets.push_back(target);
      chunk_texts.push_back(text);
      ++kept;
    } catch (const Error& e) {
      if (strict) throw;
      const std::string where = manifest.where(record), why = e.what();
      out.skipped.push_back(why.starts_with(where) ? why : str_cat(where, ": ", why));
    }
    if (chunk_texts.size() == 256) flush();
  }
  flush();
  if (kept == 0) return out;
  out.images = torch::cat(images);
  out.targets = torch::cat(targets);
  out.texts = torch::cat(texts);
  return out;
}

}  // namespace mmlearn
