#include "mmlearn/eval/clip_eval.h"

#include <torch/nn/functional.h>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/clip_pixels.h"
#include "mmlearn/models/clip_pretrained.h"

namespace mmlearn {

std::string format_retrieval(const nlohmann::json& retrieval, std::initializer_list<const char*> directions) {
  std::string out;
  char line[160];
  for (const char* dir : directions) {
    const auto& m = retrieval[dir];
    std::snprintf(line, sizeof line, "%-14s R@1 %5.1f%%  R@5 %5.1f%%  R@10 %5.1f%%\n", dir,
                  100 * m["R@1"].get<double>(), 100 * m["R@5"].get<double>(), 100 * m["R@10"].get<double>());
    out += line;
  }
  return out;
}
using nlohmann::json;
namespace F = torch::nn::functional;

namespace {

torch::Tensor embed_image_batches(Clip& model, const torch::Tensor& images, Precision precision,
                                  int64_t batch_size, bool normalize) {
  c10::InferenceMode inference;
  AutocastGuard autocast(precision);
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += batch_size) {
    auto batch = images.slice(0, i, std::min(i + batch_size, images.size(0)));
    out.push_back(model->encode_image(normalize ? model->normalize_pixels(batch) : batch));
  }
  return out.empty() ? torch::empty({0, model->config.embed_dim}) : torch::cat(out);
}

}  // namespace

torch::Tensor embed_pixels(Clip& model, const torch::Tensor& pixels, Precision precision,
                           int64_t batch_size) {
  return embed_image_batches(model, pixels, precision, batch_size, /*normalize=*/false);
}

torch::Tensor embed_images(Clip& model, const torch::Tensor& images_u8, Precision precision,
                           int64_t batch_size) {
  return embed_image_batches(model, images_u8, precision, batch_size, /*normalize=*/true);
}

torch::Tensor embed_texts(Clip& model, const torch::Tensor& ids, Precision precision, int64_t batch_size) {
  c10::InferenceMode inference;
  AutocastGuard autocast(precision);
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < ids.size(0); i += batch_size)
    out.push_back(model->encode_text(ids.slice(0, i, std::min(i + batch_size, ids.size(0)))));
  return out.empty() ? torch::empty({0, model->config.embed_dim}) : torch::cat(out);
}

torch::Tensor embed_clip_inputs(ClipBundle& clip, const std::string& modality,
                                const std::vector<std::string>& inputs, Precision precision) {
  if (modality == "text")
    return embed_texts(clip.model,
                       tokenize_batch(clip.tokenizer, inputs, clip.model->config.text.context_length),
                       precision);
  check(modality == "image", "a CLIP model embeds images and texts, not ", modality);
  std::vector<torch::Tensor> pixels;
  for (const auto& p : inputs) pixels.push_back(load_clip_pixels(clip.model->config, p));
  return embed_pixels(clip.model, torch::stack(pixels), precision);
}

json recall_at_k(const torch::Tensor& scores, const std::vector<std::vector<int64_t>>& relevant,
                 const std::vector<int64_t>& ks) {
  auto order = scores.argsort(1, /*descending=*/true);
  auto rank_of = torch::empty_like(order);
  rank_of.scatter_(1, order, torch::arange(scores.size(1)).expand_as(order).contiguous());
  auto ranks = rank_of.accessor<int64_t, 2>();
  std::vector<int64_t> hits(ks.size(), 0);
  for (int64_t q = 0; q < scores.size(0); ++q) {
    int64_t best = scores.size(1);
    for (int64_t c : relevant[q]) best = std::min(best, ranks[q][c]);
    for (size_t k = 0; k < ks.size(); ++k) hits[k] += best < ks[k];
  }
  json out;
  for (size_t k = 0; k < ks.size(); ++k)
    out["R@" + std::to_string(ks[k])] = scores.size(0) ? double(hits[k]) / scores.size(0) : 0.0;
  return out;
}

json retrieval_metrics(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                       const std::vector<std::string>& texts, const std::vector<int64_t>& ks,
                       const std::pair<std::string, std::string>& names) {
  const int64_t n = image_embeds.size(0);
  check(text_embeds.size(0) == n && static_cast<int64_t>(texts.size()) == n,
        "retrieval needs paired embeddings");
  std::map<std::string, std::vector<int64_t>> by_text;
  for (int64_t i = 0; i < n; ++i) by_text[texts[i]].push_back(i);
  std::vector<std::vector<int64_t>> relevant(n);
  for (int64_t i = 0; i < n; ++i) relevant[i] = by_text[texts[i]];
  auto scores = torch::matmul(image_embeds, text_embeds.t());
  return {{names.first, recall_at_k(scores, relevant, ks)},
          {names.second, recall_at_k(scores.t().contiguous(), relevant, ks)},
          {"n", n}};
}

ZeroShotClasses read_zero_shot_classes(const std::filesystem::path& path) {
  const json j = read_json_file(path);
  check(j.is_object() && j.contains("template") && j["template"].is_string(), path.string(),
        ": missing string field \"template\"");
  check(j.contains("attributes") && j["attributes"].is_object(), path.string(),
        ": missing object field \"attributes\"");
  ZeroShotClasses classes;
  classes.template_text = j["template"].get<std::string>();
  for (auto it = j["attributes"].begin(); it != j["attributes"].end(); ++it) {
    check(it.value().is_array() && !it.value().empty(), path.string(), ": attributes.", it.key(),
          " must be a non-empty list of strings");
    std::vector<std::string> values;
    for (const auto& v : it.value()) {
      check(v.is_string(), path.string(), ": attributes.", it.key(), " must hold strings");
      values.push_back(v.get<std::string>());
    }
    check(classes.template_text.find("{" + it.key() + "}") != std::string::npos, path.string(),
          ": template has no slot {", it.key(), "}");
    classes.attributes.emplace_back(it.key(), std::move(values));
  }
  return classes;
}

std::vector<torch::Tensor> zero_shot_probabilities(Clip& model, const text::BpeTokenizer& tokenizer,
                                                   const ZeroShotClasses& classes,
                                                   const torch::Tensor& image_embeds, Precision precision) {
  // Expand the template over the cartesian product of the attributes' values.
  std::vector<std::string> prompts{classes.template_text};
  // value_of[attribute][prompt]: the index of the value that prompt carries for that attribute.
  std::vector<std::vector<int64_t>> value_of(classes.attributes.size());
  int64_t combinations = 1;
  for (const auto& a : classes.attributes) combinations *= static_cast<int64_t>(a.second.size());
  check(combinations <= 100000, "zero-shot template has ", combinations,
        " combinations of attribute values; at most 100000 are supported");
  for (size_t k = 0; k < classes.attributes.size(); ++k) {
    const auto& [name, values] = classes.attributes[k];
    const std::string slot = "{" + name + "}";
    std::vector<std::string> next;
    std::vector<std::vector<int64_t>> next_value_of(classes.attributes.size());
    for (size_t p = 0; p < prompts.size(); ++p)
      for (size_t v = 0; v < values.size(); ++v) {
        std::string filled = prompts[p];
        for (size_t at; (at = filled.find(slot)) != std::string::npos;)
          filled.replace(at, slot.size(), values[v]);
        next.push_back(std::move(filled));
        for (size_t j = 0; j < k; ++j) next_value_of[j].push_back(value_of[j][p]);
        next_value_of[k].push_back(static_cast<int64_t>(v));
      }
    prompts = std::move(next);
    value_of = std::move(next_value_of);
  }
  auto text_embeds =
      embed_texts(model, tokenize_batch(tokenizer, prompts, model->config.text.context_length), precision);
  c10::InferenceMode inference;
  auto scale = model->logit_scale.exp().clamp_max(kMaxLogitScale);
  auto joint = torch::softmax(scale * torch::matmul(image_embeds, text_embeds.t()), 1);  // [N, prompts]
  std::vector<torch::Tensor> out;
  for (size_t k = 0; k < classes.attributes.size(); ++k) {
    auto marginal =
        torch::zeros({image_embeds.size(0), static_cast<int64_t>(classes.attributes[k].second.size())});
    marginal.index_add_(1, torch::tensor(value_of[k]), joint);
    out.push_back(marginal);
  }
  return out;
}

json evaluate_clip(Clip& model, const text::BpeTokenizer& tokenizer, const data::ImageTextDataset& ds,
                   const std::filesystem::path& classes_path, Precision precision) {
  model->eval();
  auto image_embeds = embed_images(model, ds.images, precision);
  auto text_embeds = embed_texts(model, ds.ids, precision);
  json result{{"retrieval", retrieval_metrics(image_embeds, text_embeds, ds.texts)}};
  if (classes_path.empty() || !std::filesystem::exists(classes_path)) return result;

  const ZeroShotClasses classes = read_zero_shot_classes(classes_path);
  std::vector<torch::Tensor> probabilities;
  json zero_shot = json::object(), counts = json::object();
  for (size_t k = 0; k < classes.attributes.size(); ++k) {
    const auto& [attribute, values] = classes.attributes[k];
    std::vector<int64_t> rows, labels;
    for (int64_t i = 0; i < ds.size(); ++i) {
      const json& r = ds.manifest.records[i].json;
      if (!r.contains("labels") || !r["labels"].contains(attribute)) continue;
      check(r["labels"][attribute].is_string(), ds.manifest.where(ds.manifest.records[i]), ": field labels.",
            attribute, " must be a string");
      auto it = std::find(values.begin(), values.end(), r["labels"][attribute].get<std::string>());
      check(it != values.end(), ds.manifest.where(ds.manifest.records[i]), ": label ", attribute, "=",
            r["labels"][attribute].dump(), " is not among the classes in ", classes_path.string());
      rows.push_back(i);
      labels.push_back(it - values.begin());
    }
    if (rows.empty()) continue;
    if (probabilities.empty())
      probabilities = zero_shot_probabilities(model, tokenizer, classes, image_embeds, precision);
    auto predicted = probabilities[k].index_select(0, torch::tensor(rows)).argmax(1);
    zero_shot[attribute] = predicted.eq(torch::tensor(labels)).to(torch::kDouble).mean().item<double>();
    counts[attribute] = rows.size();
  }
  result["zero_shot"] = zero_shot;
  result["zero_shot_n"] = counts;
  return result;
}

}  // namespace mmlearn
