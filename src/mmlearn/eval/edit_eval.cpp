#include "mmlearn/eval/edit_eval.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <string_view>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/eval/object_judge.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kPlaceTolerance = 0.1;  // of the picture's side; a move goes 0.25

// An object the picture must hold: the judge's value index of each attribute (-1: not said) and its centre
// (shares of the side).
struct Wanted {
  std::vector<int64_t> values;
  double x = 0, y = 0;
};

std::vector<Wanted> wanted_objects(const ObjectJudge& judge, const json& objects, const std::string& where) {
  check(objects.is_array(), where,
        ": \"target_objects\" must be a list of objects (data shapes --task edit)");
  std::vector<Wanted> out;
  for (const json& o : objects) {
    check(o.is_object() && o.contains("x") && o.contains("y") && o["x"].is_number() && o["y"].is_number(),
          where, ": each of \"target_objects\" needs \"x\" and \"y\"");
    Wanted w{{}, o["x"].get<double>(), o["y"].get<double>()};
    for (const auto& [name, values] : judge.classes().attributes) {
      const int64_t a = judge.attribute(name);
      w.values.push_back(o.contains(name) && o[name].is_string() ? judge.value(a, o[name].get<std::string>())
                                                                 : -1);
    }
    out.push_back(std::move(w));
  }
  return out;
}

// Whether a picture holds the wanted objects and nothing else: each matched to a different object found, with
// every attribute said and within kPlaceTolerance of its place (the nearest such object).
bool as_wanted(const ObjectReading& r, const std::vector<Wanted>& wanted, int64_t side) {
  if (r.objects.size() != wanted.size()) return false;
  std::vector<bool> used(r.objects.size(), false);
  for (const Wanted& w : wanted) {
    int64_t best = -1;
    double nearest = kPlaceTolerance;
    for (size_t k = 0; k < r.objects.size(); ++k) {
      bool same = !used[k];
      for (size_t a = 0; a < w.values.size() && same; ++a)
        same = w.values[a] < 0 || r.values[k][a] == w.values[a];
      const double d = std::hypot(r.objects[k].x / double(side) - w.x, r.objects[k].y / double(side) - w.y);
      if (same && d < nearest) best = static_cast<int64_t>(k), nearest = d;
    }
    if (best < 0) return false;
    used[static_cast<size_t>(best)] = true;
  }
  return true;
}

// "a small red circle, a large blue square and a small green star": what SDEdit is asked to draw.
std::string caption_of(const json& objects) {
  std::vector<std::string> parts;
  for (const json& o : objects) {
    std::string phrase;
    for (const char* a : {"size", "color", "shape"})
      if (o.contains(a) && o[a].is_string()) phrase += (phrase.empty() ? "" : " ") + o[a].get<std::string>();
    const bool vowel = !phrase.empty() && std::string_view("aeiou").find(phrase[0]) != std::string_view::npos;
    parts.push_back((vowel ? "an " : "a ") + phrase);
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i)
    out += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  return out.empty() ? "an empty dark background" : out;
}

}  // namespace

json evaluate_edits(GeneratorBundle& g, ClipBundle& clip, const fs::path& manifest,
                    const fs::path& classes_path, const EditEvalOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  check(fs::exists(classes_path), "classes file ", classes_path.string(),
        " not found: the judge classifies over its attributes (shapes writes classes.json)");
  const ObjectJudge judge(clip, read_zero_shot_classes(classes_path), o.precision);
  const bool instruct = edits_by_instruction(g);
  const data::ImageTextOptions load{.image_size = g.config.image_size,
                                    .context_length = g.text.model->config.text.context_length,
                                    .skip_bad_records = true};
  data::ImageTextDataset sources = data::load_image_text(manifest, g.text.tokenizer, load);
  const torch::Tensor all_targets = data::load_targets(sources, g.text.tokenizer, load);
  const int64_t n = o.limit > 0 ? std::min(o.limit, sources.size()) : sources.size();
  check(n > 0, manifest.string(), ": no edit triplets to judge");

  std::vector<std::vector<Wanted>> wanted;
  std::vector<std::string> texts, kinds;  // what the generator is given; the kind of each edit
  for (int64_t i = 0; i < n; ++i) {
    const data::Record& record = sources.manifest.records[static_cast<size_t>(i)];
    const std::string where = sources.manifest.where(record);
    check(
        record.json.contains("target_objects"), where,
        ": no \"target_objects\": edits are judged against the objects the target holds (data shapes --task "
        "edit)");
    wanted.push_back(wanted_objects(judge, record.json["target_objects"], where));
    texts.push_back(instruct ? sources.texts[static_cast<size_t>(i)]
                             : caption_of(record.json["target_objects"]));
    kinds.push_back(record.json.value("edit", "other"));
  }
  const auto source_images = sources.images.narrow(0, 0, n), targets = all_targets.narrow(0, 0, n);

  std::vector<torch::Tensor> edited;
  for (int64_t first = 0, k = 0; first < n; first += o.batch_size, ++k) {
    const int64_t count = std::min(o.batch_size, n - first);
    const std::vector<std::string> batch(texts.begin() + first, texts.begin() + first + count);
    GenerateOptions options = o.generate;
    options.seed = o.generate.seed + static_cast<uint64_t>(k);
    options.progress = nullptr;
    const auto from = source_images.narrow(0, first, count);
    edited.push_back(instruct
                         ? edit_by_instruction(g, from, batch,
                                               {options, o.image_guidance.value_or(g.config.image_guidance)})
                         : edit(g, from, batch, {options, o.strength}));
    if (o.progress) o.progress(first + count, n);
  }
  const auto results = torch::cat(edited);

  auto judged = [&](const torch::Tensor& pictures) {
    const auto readings = judge.read(pictures);
    std::vector<bool> right;
    for (int64_t i = 0; i < n; ++i)
      right.push_back(
          as_wanted(readings[static_cast<size_t>(i)], wanted[static_cast<size_t>(i)], pictures.size(3)));
    return right;
  };
  const std::vector<bool> right = judged(results);
  std::map<std::string, std::vector<bool>> by_kind;
  for (int64_t i = 0; i < n; ++i)
    by_kind[kinds[static_cast<size_t>(i)]].push_back(right[static_cast<size_t>(i)]);
  json kinds_json = json::object();
  for (const auto& [kind, v] : by_kind) kinds_json[kind] = {{"right", share(v)}, {"n", v.size()}};

  json metrics{{"edit", {{instruct ? "instruct" : "sdedit", share(right)}}},
               {"by_kind", kinds_json},
               {"n", n},
               {"judge_on_real", share(judged(targets))},
               {"unchanged", share(judged(source_images))},
               {"sampler", sampler_name(o.generate.sampler)},
               {"steps", o.generate.steps},
               {"guidance", o.generate.guidance},
               {"seed", o.generate.seed}};
  if (o.generate.sampler == Sampler::ddim) metrics["eta"] = o.generate.eta;
  if (instruct)
    metrics["image_guidance"] = o.image_guidance.value_or(g.config.image_guidance);
  else
    metrics["strength"] = o.strength;
  metrics["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!o.samples.empty()) {
    const auto files = write_generated(o.samples, results, 8);
    json listing = json::array();
    for (size_t i = 0; i < files.size(); ++i)
      listing.push_back({{"file", files[i].filename().string()},
                         {"source", sources.manifest.records[i].json.value("image", "")},
                         {"text", texts[i]},
                         {"kind", kinds[i]},
                         {"right", bool(right[i])}});
    write_file_atomic(o.samples / "edits.json", listing.dump(1) + "\n");
  }
  return metrics;
}

}  // namespace mmlearn
