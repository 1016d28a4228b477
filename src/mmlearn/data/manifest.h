// Manifests: one JSON record per line (JSONL). Media fields ("image", "audio", "video") hold paths relative
// to the manifest; "text" holds a string; every other field (labels, metadata) is kept as it is.
// The samples of a WebDataset shard set are records too (data/shards.h): their media fields name members
// of their shard, which medium() reads, so a loader reads both alike.
//
//   mmlearn::data::Manifest m = mmlearn::data::read_manifest("shapes/test.jsonl");
//   for (const auto& r : m.records) use(m.medium(r, "image"), r.json["text"]);
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn::data {

// A member of a shard: where its bytes lie in the file.
struct Member {
  int64_t offset = 0, size = 0;
};

struct Record {
  nlohmann::json json;
  int64_t line = 0;  // 1-based line in the manifest, for errors
  // A shard set's sample: its shard (an index into Manifest::shards), key and members by extension.
  int64_t shard = -1;
  std::string key;
  std::map<std::string, Member> members;
};

struct Manifest {
  std::filesystem::path path;  // the manifest file, or the shard set as given
  std::vector<Record> records;
  std::vector<std::filesystem::path> shards;  // a shard set's files; empty for a manifest file
  std::vector<std::string> problems;          // a shard set's samples left out: "shard: sample KEY: why"

  std::filesystem::path resolve(const std::string& relative) const;  // media path relative to the manifest
  std::string where(const Record& record) const;  // "file.jsonl:12", "shards/000001.tar: sample 00000012"
  // The file a media field names, for a manifest's record; empty for a shard sample's (see medium()).
  std::filesystem::path media_file(const Record& record, const std::string& field) const;
  // The bytes of a media field (a file, or a member of the sample's shard), at most `max_bytes`.
  std::string medium(const Record& record, const std::string& field,
                     int64_t max_bytes = int64_t{1} << 30) const;
};

// Throws mmlearn::Error naming file and line for a malformed line (blank lines are skipped).
Manifest read_manifest(const std::filesystem::path& path);
// The records of `split` in `data`: a directory's train.jsonl / test.jsonl, a manifest file, or a shard set
// (which holds one split, read as "train").
Manifest open_manifest(const std::filesystem::path& data, const std::string& split);
// The manifest file of `split` in a directory, or a manifest file given directly. A shard set has none: the
// error says to pass a manifest.
std::filesystem::path find_manifest(const std::filesystem::path& data, const std::string& split);

// The string field `field` of a record, or an error naming file, line and field.
std::string string_field(const Manifest& manifest, const Record& record, const std::string& field);

}  // namespace mmlearn::data
