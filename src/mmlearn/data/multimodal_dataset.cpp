#include "mmlearn/data/multimodal_dataset.h"

#include <torch/torch.h>

#include <set>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/vision/image_processor.h"

namespace mmlearn::data {

MultimodalDataset load_multimodal(const std::filesystem::path& path, const MultimodalOptions& o) {
  const Manifest manifest = read_manifest(path);
  auto wants = [&](const char* m) {
    return std::find(o.modalities.begin(), o.modalities.end(), m) != o.modalities.end();
  };
  const std::string asked = "\"" + join(o.modalities, "\", \"") + "\"";

  MultimodalDataset ds;
  std::vector<std::string> label_names;
  for (const auto& record : manifest.records) {
    const auto& j = record.json;
    bool any = false;
    for (const auto& m : o.modalities) any = any || (j.contains(m) && !j[m].is_null());
    check(any, manifest.where(record), ": the record has none of the fields ", asked,
          " (each record needs at least one of the modalities the model reads)");
    MultimodalExample ex;
    ex.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : manifest.where(record);
    if (j.contains(o.label_field) && !j[o.label_field].is_null()) {
      check(j[o.label_field].is_string(), manifest.where(record), ": field \"", o.label_field,
            "\" must be a string (the class name), got ", j[o.label_field].dump());
      label_names.push_back(j[o.label_field].get<std::string>());
    } else {
      check(!o.require_labels, manifest.where(record), ": no \"", o.label_field,
            "\" field (the label to learn or score against)");
      label_names.emplace_back();
    }
    try {
      if (wants("image") && j.contains("image") && !j["image"].is_null())
        ex.pixels =
            load_image_tensor(manifest.resolve(string_field(manifest, record, "image")), o.image_size);
      if (wants("text") && j.contains("text") && !j["text"].is_null())
        ex.text = string_field(manifest, record, "text");
      if (wants("audio") && j.contains("audio") && !j["audio"].is_null())
        ex.audio = read_audio_clip(manifest.resolve(string_field(manifest, record, "audio")),
                                   o.audio_window_samples);
    } catch (const Error& e) {
      if (ds.skipped++ < 5) log_warn("skipping ", manifest.where(record), ": ", e.what());
      label_names.pop_back();
      continue;
    }
    ds.examples.push_back(std::move(ex));
  }
  ds.labels = o.labels;
  if (ds.labels.empty()) {
    std::set<std::string> seen(label_names.begin(), label_names.end());
    seen.erase("");
    ds.labels.assign(seen.begin(), seen.end());
  }
  for (size_t i = 0; i < ds.examples.size(); ++i) {
    if (label_names[i].empty()) continue;
    auto it = std::find(ds.labels.begin(), ds.labels.end(), label_names[i]);
    if (it == ds.labels.end()) {
      throw Error(str_cat(path.string(), ": record ", ds.examples[i].id, " has label \"", label_names[i],
                          "\", which the model does not know (its labels: ", join(ds.labels), ")"));
    }
    ds.examples[i].label = it - ds.labels.begin();
  }
  return ds;
}

}  // namespace mmlearn::data
