// Manifests: one JSON record per line (JSONL). Media fields ("image", "audio", "video") hold paths relative
// to the manifest; "text" holds a string; every other field (labels, metadata) is kept as it is.
//
//   mmlearn::data::Manifest m = mmlearn::data::read_manifest("shapes/test.jsonl");
//   for (const auto& r : m.records) use(m.resolve(r.json["image"]), r.json["text"]);
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn::data {

struct Record {
  nlohmann::json json;
  int64_t line = 0;  // 1-based line in the manifest, for errors
};

struct Manifest {
  std::filesystem::path path;
  std::vector<Record> records;
  std::filesystem::path resolve(const std::string& relative) const;  // media path relative to the manifest
  std::string where(const Record& record) const;                     // "file.jsonl:12"
};

// Throws mmlearn::Error naming file and line for a malformed line (blank lines are skipped).
Manifest read_manifest(const std::filesystem::path& path);
// A directory's train.jsonl / test.jsonl, or a manifest file given directly.
std::filesystem::path find_manifest(const std::filesystem::path& data, const std::string& split);

// The string field `field` of a record, or an error naming file, line and field.
std::string string_field(const Manifest& manifest, const Record& record, const std::string& field);

}  // namespace mmlearn::data
