#include "mmlearn/eval/generator_eval.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/eval/clip_eval.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::array<std::string, 4> kRelations = {"left of", "right of", "above", "below"};

struct Object {
  std::string color, shape;
  std::string name() const { return color + " " + shape; }
  bool operator==(const Object&) const = default;
};

// A held-out prompt and what the picture must show.
struct Prompt {
  int64_t row;  // in the held-out data set
  std::string text;
  std::vector<int64_t> labels;  // single: the value index of each zero-shot attribute (-1: not labelled)
  Object first, second;         // pairs: in the order the caption names them
  int64_t relation = -1;        // pairs: of first to second, an index into kRelations
};

std::string with_article(const std::string& phrase) {
  return (std::string("aeiou").find(phrase[0]) != std::string::npos ? "an " : "a ") + phrase;
}

// A two-object caption with a relation between them: the objects in the caption's order and the relation,
// or nothing (another kind of caption, or two objects the caption cannot tell apart).
std::optional<Prompt> pair_prompt(const json& r, int64_t row) {
  const std::string text = r.value("text", "");
  if (!r.contains("objects") || !r["objects"].is_array() || r["objects"].size() != 2) return std::nullopt;
  std::vector<std::pair<size_t, Object>> named;
  for (const auto& o : r["objects"]) {
    if (!o.is_object() || !o.contains("color") || !o.contains("shape") || !o["color"].is_string() ||
        !o["shape"].is_string())
      return std::nullopt;
    Object object{o["color"].get<std::string>(), o["shape"].get<std::string>()};
    const size_t at = text.find(object.name());
    if (at == std::string::npos) return std::nullopt;
    named.emplace_back(at, object);
  }
  if (named[0].second == named[1].second) return std::nullopt;
  std::sort(named.begin(), named.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const std::string between = text.substr(named[0].first, named[1].first - named[0].first);
  for (size_t k = 0; k < kRelations.size(); ++k)
    if (between.find(" " + kRelations[k] + " ") != std::string::npos)
      return Prompt{row, text, {}, named[0].second, named[1].second, static_cast<int64_t>(k)};
  return std::nullopt;
}

// What the judge makes of images (their embeddings [N, E]) for the prompts they were drawn for.
struct Verdicts {
  std::vector<std::vector<bool>> attribute_right;  // single: [attribute][prompt]
  std::vector<bool> both_objects, relation;        // pairs
  double clip_score = 0;
};

class Judge {
 public:
  Judge(ClipBundle& clip, const ZeroShotClasses& classes, Precision precision)
      : clip_(clip), classes_(classes), precision_(precision) {
    for (const auto& [name, values] : classes.attributes) {
      if (name == "color") colors_ = values;
      if (name == "shape") shapes_ = values;
    }
    for (const auto& c : colors_)
      for (const auto& s : shapes_) objects_.push_back({c, s});
  }
  bool judges_pairs() const { return objects_.size() >= 2; }
  const std::vector<Object>& objects() const { return objects_; }

  torch::Tensor texts(const std::vector<std::string>& texts) const {
    return embed_texts(clip_.model,
                       tokenize_batch(clip_.tokenizer, texts, clip_.model->config.text.context_length),
                       precision_);
  }
  torch::Tensor images(const torch::Tensor& images_u8) const {
    const int64_t side = clip_.model->config.vision.image_size;
    torch::Tensor pixels = images_u8;
    if (pixels.size(2) != side || pixels.size(3) != side) {
      namespace F = torch::nn::functional;
      pixels = F::interpolate(pixels.to(torch::kFloat), F::InterpolateFuncOptions()
                                                            .size(std::vector<int64_t>{side, side})
                                                            .mode(torch::kBilinear)
                                                            .align_corners(false))
                   .round()
                   .clamp(0, 255)
                   .to(torch::kUInt8);
    }
    return embed_images(clip_.model, pixels, precision_);
  }

  // The text side of judging the prompts, embedded once for every set of pictures judged against them: the
  // prompts themselves, every pair of distinct objects in both orders, and each pair prompt in every
  // relation.
  struct PromptTexts {
    torch::Tensor prompts, pairs, relations;  // [P, E], [objects^2, E], [pairs, relations, E]
  };
  PromptTexts embed_prompts(const std::vector<Prompt>& single, const std::vector<Prompt>& pairs) const {
    PromptTexts t;
    std::vector<std::string> prompt_texts;
    for (const auto* set : {&single, &pairs})
      for (const Prompt& p : *set) prompt_texts.push_back(p.text);
    t.prompts = texts(prompt_texts);
    if (pairs.empty()) return t;
    std::vector<std::string> captions, relations;
    for (const Object& a : objects_)
      for (const Object& b : objects_)
        captions.push_back(with_article(a.name()) + " and " + with_article(b.name()));
    t.pairs = texts(captions);
    for (const Prompt& p : pairs)
      for (const auto& r : kRelations)
        relations.push_back(with_article(p.first.name()) + " " + r + " " + with_article(p.second.name()));
    t.relations = texts(relations).view(
        {static_cast<int64_t>(pairs.size()), static_cast<int64_t>(kRelations.size()), -1});
    return t;
  }

  Verdicts judge(const torch::Tensor& embeds, const std::vector<Prompt>& single,
                 const std::vector<Prompt>& pairs, const PromptTexts& t) const {
    Verdicts v;
    v.clip_score = 100 * (embeds * t.prompts).sum(1).clamp_min(0).mean().item<double>();

    const auto single_embeds = embeds.narrow(0, 0, static_cast<int64_t>(single.size()));
    if (!single.empty()) {
      const auto probabilities =
          zero_shot_probabilities(clip_.model, clip_.tokenizer, classes_, single_embeds, precision_);
      for (size_t k = 0; k < classes_.attributes.size(); ++k) {
        const auto predicted = probabilities[k].argmax(1);
        std::vector<bool> right;
        for (size_t i = 0; i < single.size(); ++i)
          if (single[i].labels[k] >= 0)
            right.push_back(predicted[static_cast<int64_t>(i)].item<int64_t>() == single[i].labels[k]);
        v.attribute_right.push_back(std::move(right));
      }
    }
    if (pairs.empty()) return v;
    const auto pair_embeds =
        embeds.narrow(0, static_cast<int64_t>(single.size()), static_cast<int64_t>(pairs.size()));
    // Every ordered pair of distinct objects; an unordered pair scores the mean of its two orders.
    const int64_t n = static_cast<int64_t>(objects_.size());
    const auto ordered = torch::matmul(pair_embeds, t.pairs.t()).view({-1, n, n});
    auto unordered = (ordered + ordered.transpose(1, 2)) / 2;
    unordered = unordered - 1e9 * torch::eye(n).unsqueeze(0);  // an object paired with itself is no pair
    const auto best = unordered.flatten(1).argmax(1);
    for (size_t i = 0; i < pairs.size(); ++i) {
      const Prompt& p = pairs[i];
      const int64_t b = best[static_cast<int64_t>(i)].item<int64_t>();
      const Object &x = objects_[static_cast<size_t>(b / n)], &y = objects_[static_cast<size_t>(b % n)];
      const bool both = (x == p.first && y == p.second) || (x == p.second && y == p.first);
      const auto row = static_cast<int64_t>(i);
      const int64_t relation = torch::matmul(t.relations[row], pair_embeds[row]).argmax().item<int64_t>();
      v.both_objects.push_back(both);
      v.relation.push_back(both && relation == p.relation);
    }
    return v;
  }

 private:
  ClipBundle& clip_;
  const ZeroShotClasses& classes_;
  Precision precision_;
  std::vector<std::string> colors_, shapes_;
  std::vector<Object> objects_;
};

double share(const std::vector<bool>& v) {
  return v.empty() ? 0.0 : static_cast<double>(std::count(v.begin(), v.end(), true)) / v.size();
}

json summary(const Verdicts& v, const ZeroShotClasses& classes, size_t singles, size_t pairs) {
  json single{{"n", singles}};
  for (size_t k = 0; k < v.attribute_right.size(); ++k)
    single[classes.attributes[k].first] = share(v.attribute_right[k]);
  return {{"single", single},
          {"pairs", {{"both_objects", share(v.both_objects)}, {"relation", share(v.relation)}, {"n", pairs}}},
          {"clip_score", v.clip_score}};
}

}  // namespace

double frechet_distance(const torch::Tensor& a_in, const torch::Tensor& b_in) {
  check(a_in.dim() == 2 && b_in.dim() == 2 && a_in.size(1) == b_in.size(1) && a_in.size(0) >= 2 &&
            b_in.size(0) >= 2,
        "frechet_distance: expected two sets [N, D] of the same width, N >= 2");
  const auto a = a_in.to(torch::kDouble), b = b_in.to(torch::kDouble);
  const auto mu_a = a.mean(0), mu_b = b.mean(0);
  const auto ca = a - mu_a, cb = b - mu_b;
  const auto sa = torch::matmul(ca.t(), ca) / (a.size(0) - 1),
             sb = torch::matmul(cb.t(), cb) / (b.size(0) - 1);
  // (S_a S_b)^1/2 has the trace of (S_a^1/2 S_b S_a^1/2)^1/2, which is symmetric: eigenvalues suffice.
  const auto [la, va] = torch::linalg_eigh(sa);
  const auto root_a = torch::matmul(va * la.clamp_min(0).sqrt(), va.t());
  const auto middle = torch::matmul(torch::matmul(root_a, sb), root_a);
  const double cross = torch::linalg_eigvalsh(middle).clamp_min(0).sqrt().sum().item<double>();
  return (mu_a - mu_b).square().sum().item<double>() + sa.trace().item<double>() + sb.trace().item<double>() -
         2 * cross;
}

json evaluate_generator(GeneratorBundle& g, ClipBundle& judge, const fs::path& manifest,
                        const fs::path& classes_path, const GeneratorEvalOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  check(fs::exists(classes_path), "classes file ", classes_path.string(),
        " not found: the judge classifies over its attributes (shapes writes classes.json)");
  const ZeroShotClasses classes = read_zero_shot_classes(classes_path);
  const auto ds = data::load_image_text(manifest, judge.tokenizer,
                                        {.image_size = judge.model->config.vision.image_size,
                                         .context_length = judge.model->config.text.context_length,
                                         .skip_bad_records = true});
  Judge judging(judge, classes, o.precision);

  std::vector<Prompt> single, pairs;
  for (int64_t i = 0; i < ds.size(); ++i) {
    const json& r = ds.manifest.records[static_cast<size_t>(i)].json;
    if (r.contains("labels") && r["labels"].is_object()) {
      if (o.limit > 0 && static_cast<int64_t>(single.size()) >= o.limit) continue;
      Prompt p{i, ds.texts[static_cast<size_t>(i)], {}, {}, {}, -1};
      bool any = false;
      for (const auto& [attribute, values] : classes.attributes) {
        const json& labels = r["labels"];
        int64_t label = -1;
        if (labels.contains(attribute) && labels[attribute].is_string()) {
          const auto it = std::find(values.begin(), values.end(), labels[attribute].get<std::string>());
          check(it != values.end(), ds.manifest.where(ds.manifest.records[static_cast<size_t>(i)]),
                ": label ", attribute, "=", labels[attribute].dump(), " is not among the classes in ",
                classes_path.string());
          label = it - values.begin();
          any = true;
        }
        p.labels.push_back(label);
      }
      if (any) single.push_back(std::move(p));
    } else if (judging.judges_pairs() && (o.limit == 0 || static_cast<int64_t>(pairs.size()) < o.limit)) {
      if (auto p = pair_prompt(r, i)) pairs.push_back(std::move(*p));
    }
  }
  check(!single.empty() || !pairs.empty(), manifest.string(),
        ": no held-out prompts to judge (records with \"labels\", or two \"objects\" and a relation in "
        "\"text\")");

  // Draw, batch by batch.
  std::vector<const Prompt*> all;
  for (const auto* set : {&single, &pairs})
    for (const Prompt& p : *set) all.push_back(&p);
  const int64_t total = static_cast<int64_t>(all.size());
  std::vector<torch::Tensor> drawn;
  for (int64_t first = 0, k = 0; first < total; first += o.batch_size, ++k) {
    std::vector<std::string> texts;
    for (int64_t i = first; i < std::min(total, first + o.batch_size); ++i)
      texts.push_back(all[static_cast<size_t>(i)]->text);
    GenerateOptions options = o.generate;
    options.seed = o.generate.seed + static_cast<uint64_t>(k);
    options.progress = nullptr;
    drawn.push_back(generate(g, texts, options));
    if (o.progress) o.progress(first + static_cast<int64_t>(texts.size()), total);
  }
  const auto images = torch::cat(drawn);

  std::vector<int64_t> rows;
  for (const Prompt* p : all) rows.push_back(p->row);
  const auto generated = judging.images(images);
  const auto real = judging.images(ds.images.index_select(0, torch::tensor(rows)));
  const auto prompt_texts = judging.embed_prompts(single, pairs);
  json metrics =
      summary(judging.judge(generated, single, pairs, prompt_texts), classes, single.size(), pairs.size());
  metrics["frechet"] = total >= 2 ? json(frechet_distance(generated, real)) : json();
  metrics["judge_on_real"] =
      summary(judging.judge(real, single, pairs, prompt_texts), classes, single.size(), pairs.size());
  metrics["sampler"] = sampler_name(o.generate.sampler);
  metrics["steps"] = o.generate.steps;
  metrics["guidance"] = o.generate.guidance;
  metrics["seed"] = o.generate.seed;
  metrics["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!o.samples.empty()) {
    const auto files = write_generated(o.samples, images, 8);
    json listing = json::array();
    for (size_t i = 0; i < files.size(); ++i)
      listing.push_back({{"file", files[i].filename().string()},
                         {"text", all[i]->text},
                         {"kind", i < single.size() ? "single" : "pair"}});
    write_file_atomic(o.samples / "prompts.json", listing.dump(1) + "\n");
  }
  return metrics;
}

}  // namespace mmlearn
