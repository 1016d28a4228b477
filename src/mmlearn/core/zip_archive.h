// A read-only ZIP archive over a memory-mapped file: the container torch.save writes since torch 1.6.
// Every size and offset comes from the file, so each one is checked against the file before use; ZIP64
// records (what torch writes for large files, and always since 2.x) are understood. Only STORED entries can
// be read: torch.save never compresses, and a compressed entry means the file was repacked by another tool.
//
//   mmlearn::ZipArchive zip("model.pt");
//   for (const auto& e : zip.entries()) ...;              // central-directory order
//   std::string_view pkl = zip.read(*zip.find("archive/data.pkl"));
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mmlearn {

struct ZipEntry {
  std::string name;
  uint64_t offset = 0;  // of the entry's data, from the start of the file
  uint64_t size = 0;    // bytes of data as stored
  uint16_t method = 0;  // 0 = stored, 8 = deflate, ...
  bool encrypted = false;
};

class ZipArchive {
 public:
  explicit ZipArchive(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;  // nullptr when absent
  // The entry's bytes, valid while the archive lives; throws unless the entry is stored uncompressed.
  std::string_view read(const ZipEntry& entry) const;

 private:
  struct Mapping;
  std::filesystem::path path_;
  std::shared_ptr<const Mapping> mapping_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace mmlearn
