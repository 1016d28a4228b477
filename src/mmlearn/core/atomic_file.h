// Atomic file writes for files users keep (checkpoints, datasets, tokenizers, reports): the content goes to a
// temporary file in the same folder, is flushed to disk, and is renamed over the target, so a crash or a full
// disk never leaves a half-written file under the final name.
//
//   mmlearn::write_file_atomic("run/config.json", json.dump(2));
//   mmlearn::AtomicFile out("run/model.safetensors");
//   out.write(header); out.write(data); out.commit();   // without commit() the target is untouched
#pragma once

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace mmlearn {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary file unless commit() succeeded

  void write(const void* data, size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  void commit();  // flush, fsync, rename over the target, fsync the folder

 private:
  std::filesystem::path target_, temp_;
  std::FILE* file_ = nullptr;
};

void write_file_atomic(const std::filesystem::path& target, std::string_view bytes);
// Makes renames and new entries in a folder durable (fsync of the folder).
void sync_directory(const std::filesystem::path& dir);

// Reads a whole (small) file; throws mmlearn::Error naming the path when it cannot.
std::string read_file(const std::filesystem::path& path);

// Reads and parses a JSON file; throws mmlearn::Error naming the path when it cannot, or when it is not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace mmlearn
