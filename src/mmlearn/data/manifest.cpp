#include "mmlearn/data/manifest.h"

#include <fstream>

#include "mmlearn/core/error.h"
#include "mmlearn/data/shards.h"

namespace mmlearn::data {
namespace fs = std::filesystem;

fs::path Manifest::resolve(const std::string& relative) const {
  fs::path p(relative);
  return p.is_absolute() ? p : path.parent_path() / p;
}

std::string Manifest::where(const Record& record) const { return str_cat(path.string(), ":", record.line); }

Manifest read_manifest(const fs::path& path) {
  check(fs::is_regular_file(path), "manifest ", path.string(),
        " not found (expected a JSONL file, one record a line)");
  std::ifstream in(path);
  check(in.good(), "cannot open manifest ", path.string());
  Manifest manifest{path, {}};
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(str_cat(path.string(), ":", number, ": not valid JSON (", e.what(),
                          "); each line must hold one JSON object"));
    }
    check(json.is_object(), path.string(), ":", number, ": a record must be a JSON object, got ",
          json.type_name());
    manifest.records.push_back({std::move(json), number});
  }
  return manifest;
}

fs::path find_manifest(const fs::path& data, const std::string& split) {
  if (is_shard_set(data)) {
    check(split == "train", "shard set ", data.string(),
          " holds one split; pass --data a directory or manifest for ", split);
    return unpack_shards(data);
  }
  if (fs::is_directory(data)) {
    fs::path p = data / (split + ".jsonl");
    check(fs::exists(p), "data directory ", data.string(), " has no ", split,
          ".jsonl (make one with `mmlearn data shapes --out ", data.string(), "`, or pass a manifest file)");
    return p;
  }
  check(fs::exists(data), "data ", data.string(), " not found");
  return data;
}

std::string string_field(const Manifest& manifest, const Record& record, const std::string& field) {
  auto it = record.json.find(field);
  check(it != record.json.end(), manifest.where(record), ": missing field \"", field, "\"");
  check(it->is_string(), manifest.where(record), ": field \"", field, "\" must be a string, got ",
        it->type_name());
  return it->get<std::string>();
}

}  // namespace mmlearn::data
