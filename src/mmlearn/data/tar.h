// POSIX tar (ustar), the container of WebDataset shards. The reader takes untrusted bytes: every header is
// checksummed, every size is bounded by what is left of the file, and an error names the file and the byte
// offset of the member. Directories, links and pax/GNU extension headers are skipped (a GNU long name is
// honoured).
//
//   mmlearn::data::TarReader tar("shards/000000.tar");
//   for (mmlearn::data::TarMember m; tar.next(m);) use(m.name, m.data);
//   mmlearn::data::TarWriter out("shards/000001.tar");   // written beside, renamed into place by finish()
//   out.add("000001.txt", "a red circle"); out.finish();
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace mmlearn::data {

struct TarMember {
  std::string name;
  std::string data;         // empty when next() was told not to read it
  int64_t offset = 0;       // of its header in the file
  int64_t data_offset = 0;  // of its bytes in the file
  int64_t size = 0;         // of its bytes
};

class TarReader {
 public:
  // Members larger than `max_member` bytes are refused.
  explicit TarReader(const std::filesystem::path& path, int64_t max_member = int64_t{1} << 30);
  // The next regular file; false at the end of the archive. Throws mmlearn::Error on a corrupt or truncated
  // archive. With read_data false, member.data is left empty (its place is in data_offset and size).
  bool next(TarMember& member, bool read_data = true);
  // The bytes of a member that next() left unread.
  std::string read(const TarMember& member);

 private:
  std::filesystem::path path_;
  std::ifstream in_;
  int64_t size_ = 0, offset_ = 0, max_member_;
};

class TarWriter {
 public:
  explicit TarWriter(const std::filesystem::path& path);
  ~TarWriter();  // without finish(): the partial archive is removed
  void add(const std::string& name, const std::string& data);
  void finish();

 private:
  std::filesystem::path path_, temporary_;
  std::ofstream out_;
  bool finished_ = false;
};

}  // namespace mmlearn::data
