#include "mmlearn/data/shards.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/manifest.h"
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

PackResult pack_shards(const fs::path& manifest_path, const fs::path& out, int64_t per_shard) {
  check(per_shard >= 1, "--per-shard must be at least 1");
  const Manifest manifest = read_manifest(manifest_path);
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
      const std::string relative = string_field(manifest, r, field);
      std::string ext = fs::path(relative).extension().string();
      ext = ext.empty() ? std::string(field) : ext.substr(1);
      check(ext.find('/') == std::string::npos && ext.size() < 16, manifest.where(r), ": field \"", field,
            "\": cannot name a member after \"", relative, "\"");
      const fs::path file = manifest.resolve(relative);
      check(fs::is_regular_file(file), manifest.where(r), ": field \"", field, "\": ", file.string(),
            " not found");
      media.emplace_back(ext, read_file(file));
      record[field] = ext;
    }
    tar->add(std::string(key) + ".json", record.dump());
    for (const auto& [ext, bytes] : media) tar->add(std::string(key) + "." + ext, bytes);
    ++result.samples;
  }
  if (tar) tar->finish();
  return result;
}

fs::path unpack_shards(const fs::path& data) {
  const std::vector<fs::path> shards = shard_paths(data);
  // The cache is keyed by the shards' paths, sizes and times: a shard written again is unpacked again.
  std::string identity;
  for (const auto& p : shards)
    identity += str_cat(fs::absolute(p).string(), ":", fs::file_size(p), ":",
                        fs::last_write_time(p).time_since_epoch().count(), ";");
  const fs::path dir =
      fs::temp_directory_path() / "mmlearn-shards" / str_cat(std::hex, std::hash<std::string>{}(identity));
  if (fs::exists(dir / "train.jsonl")) return dir / "train.jsonl";

  const fs::path scratch = fs::path(dir).concat(str_cat(".", ::getpid()));
  fs::remove_all(scratch);
  fs::create_directories(scratch / "media");
  std::string manifest;
  json problems = json::array();
  int64_t samples = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string shard = shards[s].string();
    std::map<std::string, std::string> members;  // of the sample being read: extension -> bytes
    std::string key;
    auto finish_sample = [&] {
      if (key.empty()) return;
      const std::string where = str_cat(shard, ": sample ", key, ": ");
      auto record = members.count("json") ? json::parse(members["json"], nullptr, false) : json();
      std::string problem =
          record.is_discarded() || !record.is_object() ? "no JSON record (KEY.json)" : std::string();
      for (const char* field : kMediaFields) {
        if (!problem.empty() || !record.contains(field)) continue;
        const auto& ext = record[field];
        if (!ext.is_string() || !members.count(ext.get<std::string>())) {
          problem = str_cat("field \"", field, "\" names member ", ext.dump(), ", which the sample lacks");
          continue;
        }
        // Named after the shard and the key, so that a reader's error points back to the sample.
        // ('/' in a key, and so "..", cannot leave the cache).
        std::string flat = key + "." + ext.get<std::string>();
        std::replace(flat.begin(), flat.end(), '/', '_');
        const std::string file = str_cat("media/", s, "-", shards[s].stem().string(), "-", flat);
        std::ofstream out(scratch / file, std::ios::binary);  // the cache appears by renaming its folder
        const std::string& bytes = members[ext.get<std::string>()];
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        check(out.good(), (scratch / file).string(), ": write failed (disk full?)");
        record[field] = file;
      }
      if (problem.empty()) {
        manifest += record.dump() + "\n";
        ++samples;
      } else {
        problems.push_back(where + problem);
      }
      members.clear();
      key.clear();
    };
    try {
      TarReader tar(shards[s]);
      for (TarMember m; tar.next(m);) {
        auto [k, extension] = key_and_extension(m.name);
        if (k != key) finish_sample();
        key = k;
        members[extension] = std::move(m.data);
      }
      finish_sample();
    } catch (const Error& e) {
      members.clear();
      key.clear();
      problems.push_back(str_cat(e.what(), "; the rest of this shard is skipped"));
    }
  }
  write_file_atomic(scratch / "train.jsonl", manifest);
  write_file_atomic(scratch / "problems.json", problems.dump(1));
  std::error_code ec;
  fs::rename(scratch, dir, ec);  // another process may have been first: use its copy
  if (ec) fs::remove_all(scratch);
  log_info("unpacked ", samples, " samples from ", shards.size(), " shards into ", dir.string(),
           problems.empty() ? std::string() : str_cat("; ", problems.size(), " left out"));
  return dir / "train.jsonl";
}

std::vector<std::string> shard_problems(const fs::path& manifest) {
  const fs::path file = manifest.parent_path() / "problems.json";
  if (manifest.filename() != "train.jsonl" || !fs::exists(file) ||
      manifest.parent_path().parent_path().filename() != "mmlearn-shards")
    return {};
  return json::parse(read_file(file)).get<std::vector<std::string>>();
}

}  // namespace mmlearn::data
