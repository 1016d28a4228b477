#include "mmlearn/data/shards.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>

#include "mmlearn/core/error.h"
#include "mmlearn/data/tar.h"

namespace mmlearn::data {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kMediaFields[] = {"image", "audio", "video"};
constexpr int64_t kMaxShards = 1000000;

// "dir/{000000..000099}.tar": the brace range, as WebDataset and the shell write it.
const std::regex& brace_range() {
  static const std::regex r(R"(^(.*)\{(\d+)\.\.(\d+)\}(.*)$)");
  return r;
}

// A member's sample key and extension: "dir/0012.seg.png" -> ("dir/0012", "seg.png").
std::pair<std::string, std::string> key_and_extension(const std::string& name) {
  const size_t slash = name.rfind('/');
  const size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
  if (dot == std::string::npos) return {name, ""};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

}  // namespace

bool is_shard_set(const fs::path& data) {
  const std::string s = data.string();
  if (s.size() > 4 && s.compare(s.size() - 4, 4, ".tar") == 0) return true;
  if (fs::is_directory(data) && !fs::exists(data / "train.jsonl") && !fs::exists(data / "test.jsonl")) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(data, ec))
      if (e.path().extension() == ".tar") return true;
  }
  return false;
}

std::vector<fs::path> shard_paths(const fs::path& data) {
  std::vector<fs::path> paths;
  std::smatch m;
  const std::string s = data.string();
  if (fs::is_directory(data)) {
    for (const auto& e : fs::directory_iterator(data))
      if (e.path().extension() == ".tar") paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
  } else if (std::regex_match(s, m, brace_range())) {
    const std::string first = m[2], last = m[3];
    check(first.size() < 10 && last.size() < 10, s, ": shard numbers of at most 9 digits");
    const int64_t a = std::stoll(first), b = std::stoll(last);
    check(a <= b && b - a < kMaxShards, s, ": the range {", first, "..", last, "} must count up, at most ",
          kMaxShards, " shards");
    for (int64_t i = a; i <= b; ++i) {
      std::string number = std::to_string(i);
      if (number.size() < first.size()) number.insert(0, first.size() - number.size(), '0');
      paths.emplace_back(m[1].str() + number + m[4].str());
    }
  } else {
    paths.push_back(data);
  }
  check(!paths.empty(), s, ": no .tar shards found");
  for (const auto& p : paths) check(fs::is_regular_file(p), "shard ", p.string(), " not found (in ", s, ")");
  return paths;
}

PackResult pack_shards(const Manifest& manifest, const fs::path& out, int64_t per_shard) {
  check(per_shard >= 1, "--per-shard must be at least 1");
  fs::create_directories(out);
  PackResult result;
  std::unique_ptr<TarWriter> tar;
  for (const Record& r : manifest.records) {
    if (result.samples % per_shard == 0) {
      if (tar) tar->finish();
      char name[32];
      std::snprintf(name, sizeof(name), "%06lld.tar", static_cast<long long>(result.shards++));
      tar = std::make_unique<TarWriter>(out / name);
    }
    char key[32];
    std::snprintf(key, sizeof(key), "%08lld", static_cast<long long>(result.samples));
    json record = r.json;
    std::vector<std::pair<std::string, std::string>> media;
    for (const char* field : kMediaFields) {
      if (!record.contains(field)) continue;
      const std::string value = string_field(manifest, r, field);
      std::string ext = r.shard >= 0 ? value : fs::path(value).extension().string();
      if (r.shard < 0) ext = ext.empty() ? std::string(field) : ext.substr(1);
      check(ext.find('/') == std::string::npos && ext.size() < 16, manifest.where(r), ": field \"", field,
            "\": cannot name a member after \"", value, "\"");
      media.emplace_back(ext, manifest.medium(r, field));
      record[field] = ext;
    }
    tar->add(std::string(key) + ".json", record.dump());
    for (const auto& [ext, bytes] : media) tar->add(std::string(key) + "." + ext, bytes);
    ++result.samples;
  }
  if (tar) tar->finish();
  return result;
}

Manifest read_shard_set(const fs::path& data) {
  Manifest set;
  set.path = data;
  set.shards = shard_paths(data);
  for (size_t s = 0; s < set.shards.size(); ++s) {
    const std::string shard = set.shards[s].string();
    Record sample;
    std::string record_json;
    auto finish_sample = [&] {
      if (sample.key.empty()) return;
      const std::string where = str_cat(shard, ": sample ", sample.key, ": ");
      auto record = json::parse(record_json, nullptr, false);
      std::string problem =
          record.is_discarded() || !record.is_object() ? "no JSON record (KEY.json)" : std::string();
      for (const char* field : kMediaFields) {
        if (!problem.empty() || !record.contains(field)) continue;
        const auto& ext = record[field];
        if (!ext.is_string() || !sample.members.count(ext.get<std::string>()))
          problem = str_cat("field \"", field, "\" names member ", ext.dump(), ", which the sample lacks");
      }
      if (problem.empty()) {
        sample.json = std::move(record);
        sample.shard = static_cast<int64_t>(s);
        sample.line = static_cast<int64_t>(set.records.size()) + 1;
        set.records.push_back(std::move(sample));
      } else {
        set.problems.push_back(where + problem);
      }
      sample = Record{};
      record_json.clear();
    };
    try {
      TarReader tar(set.shards[s]);
      // Only the records are read here; a member's place is kept for when a batch needs it.
      for (TarMember m; tar.next(m, /*read_data=*/false);) {
        auto [key, extension] = key_and_extension(m.name);
        if (key != sample.key) finish_sample();
        sample.key = key;
        if (extension == "json") {
          check(m.size <= (1 << 20), shard, ": ", m.name, " holds ", m.size,
                " bytes (a record is at most 1 MiB)");
          record_json = tar.read(m);
        } else {
          sample.members[extension] = {m.data_offset, m.size};
        }
      }
      finish_sample();
    } catch (const Error& e) {
      sample = Record{};
      record_json.clear();
      set.problems.push_back(str_cat(e.what(), "; the rest of this shard is skipped"));
    }
  }
  return set;
}

}  // namespace mmlearn::data
