#include "mmlearn/eval/captioner_eval.h"

#include <map>
#include <memory>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/data/record_media.h"
#include "mmlearn/eval/caption_metrics.h"
#include "mmlearn/eval/wer.h"

namespace mmlearn {
using nlohmann::json;

namespace {

struct Item {
  std::string image;
  CaptionerExample text;
  json objects, type;
};

json rate(int64_t right, int64_t total) {
  return total ? json(static_cast<double>(right) / static_cast<double>(total)) : json();
}

}  // namespace

json evaluate_captioner(CaptionerBundle& m, const std::filesystem::path& path,
                        const CaptionerEvalOptions& o) {
  const std::string& task = m.model->config.task;
  const auto manifest = data::read_manifest(path);
  const int64_t size = m.clip.model->config.vision.image_size;
  const int64_t wanted = o.limit > 0 ? std::min<int64_t>(o.limit, int64_t(manifest.records.size()))
                                     : int64_t(manifest.records.size());
  m.model->eval();
  m.clip.model->eval();
  std::vector<Item> items;
  std::vector<std::string> hypotheses;
  int64_t skipped = 0;
  Progress bar("eval", wanted, "record");
  std::vector<torch::Tensor> pixels;
  std::vector<std::string> prompts;
  auto flush = [&] {
    if (pixels.empty()) return;
    const auto written =
        describe_images(m, m.clip.model->normalize_pixels(torch::stack(pixels)), prompts, o.generation);
    hypotheses.insert(hypotheses.end(), written.begin(), written.end());
    pixels.clear();
    prompts.clear();
    bar.update(static_cast<int64_t>(items.size()));
  };
  for (const auto& record : manifest.records) {
    if (static_cast<int64_t>(items.size()) >= wanted) break;
    try {
      Item item{.text = captioner_example(task, manifest, record)};
      pixels.push_back(data::read_record_image(manifest, record, size));
      item.image = record.json.value("image", "");
      item.objects = record.json.value("objects", json());
      item.type = record.json.value("type", json("all"));
      prompts.push_back(item.text.prompt);
      items.push_back(std::move(item));
    } catch (const Error& e) {
      if (o.strict) throw;
      if (++skipped <= 5) log_warn("skipped: ", e.what());
    }
    if (static_cast<int64_t>(pixels.size()) == o.batch_size) flush();
  }
  flush();
  bar.finish();
  check(!items.empty(), path.string(), ": no usable record to evaluate (", skipped, " skipped); a ",
        captioner_model_type(task), " model is evaluated on records with \"image\" and ",
        task == "vqa" ? "\"question\" + \"answer\"" : "\"text\"");

  json out = {{"samples", items.size()}, {"skipped", skipped}};
  if (task == "vqa") {
    std::map<std::string, std::pair<int64_t, int64_t>> by_type;  // right, total
    std::pair<int64_t, int64_t> all, charts, scenes;
    for (size_t i = 0; i < items.size(); ++i) {
      const bool right = normalize_transcript(hypotheses[i]) == normalize_transcript(items[i].text.target);
      const std::string type = items[i].type.is_string() ? items[i].type.get<std::string>() : "all";
      for (auto* tally : {&all, &by_type[type], type.starts_with("chart_") ? &charts : &scenes}) {
        tally->first += right;
        tally->second += 1;
      }
    }
    json types = json::object(), counts = json::object();
    for (const auto& [type, tally] : by_type) {
      types[type] = rate(tally.first, tally.second);
      counts[type] = tally.second;
    }
    out["accuracy"] = rate(all.first, all.second);
    out["by_type"] = types;
    out["count_by_type"] = counts;
    out["charts"] = rate(charts.first, charts.second);
    out["scenes"] = rate(scenes.first, scenes.second);
  } else {
    std::vector<std::vector<std::string>> references;
    int64_t grounded = 0, with_objects = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      references.push_back({items[i].text.target});
      if (!items[i].objects.is_array()) continue;
      ++with_objects;
      grounded += grounded_caption(hypotheses[i], items[i].objects);
    }
    out["bleu4"] = bleu4(hypotheses, references);
    out["cider"] = cider_d(hypotheses, references);
    out["grounded_accuracy"] = rate(grounded, with_objects);
  }
  json examples = json::array();
  for (size_t i = 0; i < std::min<size_t>(5, items.size()); ++i)
    examples.push_back({{"image", items[i].image},
                        {"prompt", items[i].text.prompt},
                        {"reference", items[i].text.target},
                        {"hypothesis", hypotheses[i]}});
  out["examples"] = examples;
  return out;
}

}  // namespace mmlearn
