#include "mmlearn/eval/generator_eval.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/eval/object_judge.h"

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

// Pictures through the generator's autoencoder and back, at its size: the best its UNet could draw them.
torch::Tensor autoencoded(GeneratorBundle& g, const torch::Tensor& images_u8) {
  torch::NoGradGuard no_grad;
  const auto x = resized(images_u8, g.config.image_size);
  std::vector<torch::Tensor> out;
  for (int64_t first = 0; first < x.size(0); first += 64) {
    const auto batch = x.narrow(0, first, std::min<int64_t>(64, x.size(0) - first));
    out.push_back(to_pixels(g.vae->decode(g.vae->encode(to_unit_range(batch)).mode())));
  }
  return torch::cat(out);
}

// The relation of the object at a to the one at b, by the data generator's rule: along the axis where their
// centres differ most (data/shapes.cpp). An index into kRelations.
int64_t relation_of(const SceneObject& a, const SceneObject& b) {
  const double dx = a.x - b.x, dy = a.y - b.y;
  if (std::abs(dx) >= std::abs(dy)) return dx < 0 ? 0 : 1;
  return dy < 0 ? 2 : 3;
}

// What the judge makes of the pictures drawn for the prompts.
struct Verdicts {
  std::vector<std::vector<bool>> attribute_right;         // single: [attribute][prompt]
  std::vector<bool> one_object;                           // single: exactly one object found
  std::vector<bool> both_objects, relation, two_objects;  // pairs
  double clip_score = 0;
};

// readings: of the pictures, singles first; embeds and prompts: the pictures' and the prompts' embeddings.
Verdicts verdicts(const ObjectJudge& j, const std::vector<ObjectReading>& readings,
                  const torch::Tensor& embeds, const torch::Tensor& prompts,
                  const std::vector<Prompt>& single, const std::vector<Prompt>& pairs) {
  Verdicts v;
  v.clip_score = 100 * (embeds * prompts).sum(1).clamp_min(0).mean().item<double>();
  const size_t attributes = j.classes().attributes.size();
  v.attribute_right.resize(attributes);
  // A single object: the largest object found must be the one asked for (none found: every attribute wrong).
  for (size_t i = 0; i < single.size(); ++i) {
    const ObjectReading& r = readings[i];
    for (size_t k = 0; k < attributes; ++k)
      if (single[i].labels[k] >= 0)
        v.attribute_right[k].push_back(!r.objects.empty() && r.values[0][k] == single[i].labels[k]);
    v.one_object.push_back(r.objects.size() == 1);
  }
  // Two objects: each asked-for object among those found, two different ones; then their relation.
  const int64_t color = j.attribute("color"), shape = j.attribute("shape");
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Prompt& p = pairs[i];
    const ObjectReading& r = readings[single.size() + i];
    auto find = [&](const Object& o, int64_t other) -> int64_t {
      for (size_t k = 0; k < r.objects.size(); ++k)
        if (static_cast<int64_t>(k) != other &&
            r.values[k][static_cast<size_t>(color)] == j.value(color, o.color) &&
            r.values[k][static_cast<size_t>(shape)] == j.value(shape, o.shape))
          return static_cast<int64_t>(k);
      return -1;
    };
    const int64_t a = find(p.first, -1), b = a >= 0 ? find(p.second, a) : -1;
    const bool both = a >= 0 && b >= 0;
    v.both_objects.push_back(both);
    v.relation.push_back(both && relation_of(r.objects[static_cast<size_t>(a)],
                                             r.objects[static_cast<size_t>(b)]) == p.relation);
    v.two_objects.push_back(r.objects.size() == 2);
  }
  return v;
}

json summary(const Verdicts& v, const ZeroShotClasses& classes, size_t singles, size_t pairs) {
  json single{{"n", singles}, {"one_object", share(v.one_object)}};
  for (size_t k = 0; k < v.attribute_right.size(); ++k)
    single[classes.attributes[k].first] = share(v.attribute_right[k]);
  return {{"single", single},
          {"pairs",
           {{"both_objects", share(v.both_objects)},
            {"relation", share(v.relation)},
            {"two_objects", share(v.two_objects)},
            {"n", pairs}}},
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
  ObjectJudge judging(judge, classes, o.precision);
  const bool judges_pairs = judging.attribute("color") >= 0 && judging.attribute("shape") >= 0;

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
    } else if (judges_pairs && (o.limit == 0 || static_cast<int64_t>(pairs.size()) < o.limit)) {
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
  std::vector<std::string> texts;
  for (const Prompt* p : all) texts.push_back(p->text);
  const auto prompts = judging.texts(texts);
  const auto real_images = ds.images.index_select(0, torch::tensor(rows));
  const auto generated = judging.images(images), real = judging.images(real_images);
  json metrics = summary(verdicts(judging, judging.read(images), generated, prompts, single, pairs), classes,
                         single.size(), pairs.size());
  metrics["frechet"] = total >= 2 ? json(frechet_distance(generated, real)) : json();
  metrics["judge_on_real"] =
      summary(verdicts(judging, judging.read(real_images), real, prompts, single, pairs), classes,
              single.size(), pairs.size());
  // What the autoencoder alone loses, told apart from what the UNet has not learnt.
  const auto round_trip = autoencoded(g, real_images);
  metrics["judge_on_autoencoded"] =
      summary(verdicts(judging, judging.read(round_trip), judging.images(round_trip), prompts, single, pairs),
              classes, single.size(), pairs.size());
  metrics["sampler"] = sampler_name(o.generate.sampler);
  if (o.generate.sampler == Sampler::ddim) metrics["eta"] = o.generate.eta;
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
