#include "mmlearn/data/multimodal_dataset.h"

#include <torch/torch.h>

#include <set>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/data/record_media.h"

namespace mmlearn::data {

namespace {

bool has(const nlohmann::json& j, const std::string& field) {
  return j.contains(field) && !j[field].is_null();
}

// The media and text of a record that the options ask for (its label is set apart).
MultimodalExample read_example(const Manifest& manifest, const Record& record, const MultimodalOptions& o) {
  auto wants = [&](const char* m) {
    return std::find(o.modalities.begin(), o.modalities.end(), m) != o.modalities.end();
  };
  const auto& j = record.json;
  MultimodalExample ex;
  ex.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : manifest.where(record);
  if (wants("image") && has(j, "image")) ex.pixels = read_record_image(manifest, record, o.image_size);
  if (wants("text") && has(j, "text")) ex.text = string_field(manifest, record, "text");
  if (wants("audio") && has(j, "audio"))
    ex.audio = read_record_audio(manifest, record, o.audio_window_samples);
  return ex;
}

}  // namespace

int64_t MultimodalDataset::size() const {
  return streamed ? streamed->size() : static_cast<int64_t>(examples.size());
}

std::vector<MultimodalExample> MultimodalDataset::batch(const std::vector<int64_t>& indices) const {
  std::vector<MultimodalExample> out;
  for (int64_t i : indices) {
    if (!streamed) {
      out.push_back(examples.at(static_cast<size_t>(i)));
      continue;
    }
    const auto& records = streamed->manifest().records;
    out.push_back(streamed->decode(i, [&](const Record& r) {
      MultimodalExample ex = read_example(streamed->manifest(), r, options);
      ex.label = streamed_labels[static_cast<size_t>(&r - records.data())];
      return ex;
    }));
  }
  return out;
}

MultimodalDataset load_multimodal(const std::filesystem::path& path, const MultimodalOptions& o) {
  return load_multimodal(read_manifest(path), o);
}

MultimodalDataset load_multimodal(Manifest manifest, const MultimodalOptions& o) {
  const std::string asked = "\"" + join(o.modalities, "\", \"") + "\"";
  const bool streams = !manifest.shards.empty();
  MultimodalDataset ds;
  ds.options = o;
  std::vector<std::string> label_names;
  for (const auto& record : manifest.records) {
    const auto& j = record.json;
    bool any = false;
    for (const auto& m : o.modalities) any = any || has(j, m);
    check(any, manifest.where(record), ": the record has none of the fields ", asked,
          " (each record needs at least one of the modalities the model reads)");
    if (has(j, o.label_field)) {
      check(j[o.label_field].is_string(), manifest.where(record), ": field \"", o.label_field,
            "\" must be a string (the class name), got ", j[o.label_field].dump());
      label_names.push_back(j[o.label_field].get<std::string>());
    } else {
      check(!o.require_labels, manifest.where(record), ": no \"", o.label_field,
            "\" field (the label to learn or score against)");
      label_names.emplace_back();
    }
    if (streams) continue;
    try {
      ds.examples.push_back(read_example(manifest, record, o));
    } catch (const Error& e) {
      if (ds.skipped++ < 5) log_warn("skipping ", e.what());
      label_names.pop_back();
    }
  }
  ds.labels = o.labels;
  if (ds.labels.empty()) {
    std::set<std::string> seen(label_names.begin(), label_names.end());
    seen.erase("");
    ds.labels.assign(seen.begin(), seen.end());
  }
  std::vector<int64_t> label_index;
  for (size_t i = 0; i < label_names.size(); ++i) {
    if (label_names[i].empty()) {
      label_index.push_back(-1);
      continue;
    }
    auto it = std::find(ds.labels.begin(), ds.labels.end(), label_names[i]);
    if (it == ds.labels.end()) {
      const std::string id = streams ? manifest.where(manifest.records[i]) : ds.examples[i].id;
      throw Error(str_cat(manifest.path.string(), ": record ", id, " has label \"", label_names[i],
                          "\", which the model does not know (its labels: ", join(ds.labels), ")"));
    }
    label_index.push_back(it - ds.labels.begin());
  }
  if (streams) {
    ds.streamed_labels = std::move(label_index);
    ds.streamed = std::make_shared<StreamedRecords>(std::move(manifest));
  } else {
    for (size_t i = 0; i < ds.examples.size(); ++i) ds.examples[i].label = label_index[i];
  }
  return ds;
}

}  // namespace mmlearn::data
