#include "mmlearn/data/manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/shards.h"

namespace mmlearn::data {
namespace fs = std::filesystem;

fs::path Manifest::resolve(const std::string& relative) const {
  fs::path p(relative);
  return p.is_absolute() ? p : path.parent_path() / p;
}

std::string Manifest::where(const Record& record) const {
  if (record.shard >= 0)
    return str_cat(shards.at(static_cast<size_t>(record.shard)).string(), ": sample ", record.key);
  return str_cat(path.string(), ":", record.line);
}

fs::path Manifest::media_file(const Record& record, const std::string& field) const {
  if (record.shard >= 0) return {};
  return resolve(string_field(*this, record, field));
}

std::string Manifest::medium(const Record& record, const std::string& field, int64_t max_bytes) const {
  const std::string value = string_field(*this, record, field);
  if (record.shard < 0) {
    const fs::path file = resolve(value);
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    check(!ec, where(record), ": field \"", field, "\": ", file.string(), " not found");
    check(static_cast<int64_t>(size) <= max_bytes, file.string(), ": ", size, " bytes, more than ",
          max_bytes);
    return read_file(file);
  }
  const auto member = record.members.find(value);
  check(member != record.members.end(), where(record), ": field \"", field, "\" names member \"", value,
        "\", which the sample lacks");
  const Member& m = member->second;
  check(m.size <= max_bytes, where(record), ".", value, ": ", m.size, " bytes, more than ", max_bytes);
  const fs::path& shard = shards.at(static_cast<size_t>(record.shard));
  // pread on a descriptor of its own: loader threads read members side by side.
  const int fd = ::open(shard.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, shard.string(), ": cannot open (", std::strerror(errno), ")");
  std::string bytes(static_cast<size_t>(m.size), '\0');
  int64_t done = 0;
  while (done < m.size) {
    const ssize_t n = ::pread(fd, bytes.data() + done, static_cast<size_t>(m.size - done), m.offset + done);
    if (n <= 0) break;
    done += n;
  }
  ::close(fd);
  check(done == m.size, where(record), ".", value, ": the shard ends before the member does (truncated?)");
  return bytes;
}

Manifest read_manifest(const fs::path& path) {
  check(fs::is_regular_file(path), "manifest ", path.string(),
        " not found (expected a JSONL file, one record a line)");
  std::ifstream in(path);
  check(in.good(), "cannot open manifest ", path.string());
  Manifest manifest;
  manifest.path = path;
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

Manifest open_manifest(const fs::path& data, const std::string& split) {
  if (is_shard_set(data)) {
    check(split == "train", "shard set ", data.string(),
          " holds one split, for training; pass --data a directory or manifest for ", split);
    return read_shard_set(data);
  }
  return read_manifest(find_manifest(data, split));
}

fs::path find_manifest(const fs::path& data, const std::string& split) {
  check(!is_shard_set(data), data.string(), " is a shard set, which `mmlearn train` reads; for ", split,
        " pass a data directory or a manifest (`mmlearn data pack` writes shards from one)");
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
