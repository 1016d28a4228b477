#include "mmlearn/data/tar.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "mmlearn/core/error.h"

namespace mmlearn::data {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kBlock = 512;

// An octal field (NUL- or space-terminated); -1 when it is not one.
int64_t octal(const char* field, size_t size) {
  int64_t value = 0;
  size_t i = 0;
  while (i < size && field[i] == ' ') ++i;
  bool digits = false;
  for (; i < size && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (value > (int64_t{1} << 56)) return -1;
    value = value * 8 + (field[i] - '0');
    digits = true;
  }
  for (; i < size; ++i)
    if (field[i] != '\0' && field[i] != ' ') return -1;
  return digits ? value : -1;
}

std::string text(const char* field, size_t size) { return std::string(field, strnlen(field, size)); }

bool checksum_holds(const std::array<char, kBlock>& h) {
  const int64_t stored = octal(h.data() + 148, 8);
  int64_t sum = 0;
  for (int64_t i = 0; i < kBlock; ++i)
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[static_cast<size_t>(i)]);
  return stored == sum;
}

void write_octal(char* field, size_t size, int64_t value) {
  std::snprintf(field, size, "%0*llo", static_cast<int>(size - 1), static_cast<long long>(value));
}

}  // namespace

TarReader::TarReader(const fs::path& path, int64_t max_member)
    : path_(path), in_(path, std::ios::binary), max_member_(max_member) {
  check(in_.good(), path.string(), ": cannot open the shard");
  std::error_code ec;
  size_ = static_cast<int64_t>(fs::file_size(path, ec));
  check(!ec, path.string(), ": cannot read its size (", ec.message(), ")");
}

bool TarReader::next(TarMember& member, bool read_data) {
  std::string long_name;
  while (true) {
    // Every tar writer ends the archive with zero blocks: without one, the file was cut short (perhaps
    // between members).
    check(offset_ + kBlock <= size_, path_.string(), ": truncated at byte ", offset_,
          offset_ == size_ ? " (no end-of-archive block)" : " (a partial header)");
    std::array<char, kBlock> h{};
    in_.seekg(offset_);
    in_.read(h.data(), kBlock);
    check(in_.gcount() == kBlock, path_.string(), ": cannot read the header at byte ", offset_);
    if (std::all_of(h.begin(), h.end(), [](char c) { return c == 0; })) return false;
    const auto where = [&] { return str_cat(path_.string(), ": member at byte ", offset_, ": "); };
    check(checksum_holds(h), where(), "header checksum does not match (not a tar archive, or corrupt)");
    const int64_t size = octal(h.data() + 124, 12);
    check(size >= 0, where(), "size field is not an octal number");
    const int64_t data_at = offset_ + kBlock, padded = (size + kBlock - 1) / kBlock * kBlock;
    check(size <= size_ - data_at, where(), "holds ", size, " bytes, but only ", size_ - data_at,
          " are left in the file (truncated)");
    const char type = h[156];
    std::string name = long_name.empty() ? text(h.data(), 100) : long_name;
    if (long_name.empty() && std::memcmp(h.data() + 257, "ustar", 5) == 0 && h[345] != '\0')
      name = text(h.data() + 345, 155) + "/" + name;
    long_name.clear();
    offset_ = data_at + padded;
    if (type == 'L') {  // GNU long name: the next header's name
      check(size <= 4096, where(), "a long name of ", size, " bytes (at most 4096)");
      long_name.resize(static_cast<size_t>(size));
      in_.seekg(data_at);
      in_.read(long_name.data(), size);
      long_name.resize(strnlen(long_name.data(), long_name.size()));
      continue;
    }
    if (type != '0' && type != '\0') continue;  // directories, links, pax headers
    check(size <= max_member_, where(), name, " holds ", size, " bytes (at most ", max_member_, ")");
    member.name = std::move(name);
    member.offset = data_at - kBlock;
    member.data_offset = data_at;
    member.size = size;
    member.data.clear();
    if (!read_data) return true;
    member.data = read(member);
    return true;
  }
}

std::string TarReader::read(const TarMember& member) {
  std::string data(static_cast<size_t>(member.size), '\0');
  in_.clear();
  in_.seekg(member.data_offset);
  in_.read(data.data(), member.size);
  check(in_.gcount() == member.size, path_.string(), ": cannot read ", member.name);
  return data;
}

TarWriter::TarWriter(const fs::path& path)
    : path_(path), temporary_(fs::path(path).concat(".partial")), out_(temporary_, std::ios::binary) {
  check(out_.good(), temporary_.string(), ": cannot write");
}

TarWriter::~TarWriter() {
  if (finished_) return;
  out_.close();
  std::error_code ignored;
  fs::remove(temporary_, ignored);
}

void TarWriter::add(const std::string& name, const std::string& data) {
  check(!name.empty() && name.size() < 100, "tar member name \"", name, "\" must have 1 to 99 characters");
  std::array<char, kBlock> h{};
  std::memcpy(h.data(), name.data(), name.size());
  write_octal(h.data() + 100, 8, 0644);
  write_octal(h.data() + 108, 8, 0);
  write_octal(h.data() + 116, 8, 0);
  write_octal(h.data() + 124, 12, static_cast<int64_t>(data.size()));
  write_octal(h.data() + 136, 12, 0);
  h[156] = '0';
  std::memcpy(h.data() + 257, "ustar", 6);
  std::memcpy(h.data() + 263, "00", 2);
  std::memset(h.data() + 148, ' ', 8);
  int64_t sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  std::snprintf(h.data() + 148, 8, "%06llo", static_cast<long long>(sum));
  out_.write(h.data(), kBlock);
  out_.write(data.data(), static_cast<std::streamsize>(data.size()));
  const std::string pad(static_cast<size_t>((kBlock - static_cast<int64_t>(data.size()) % kBlock) % kBlock),
                        '\0');
  out_.write(pad.data(), static_cast<std::streamsize>(pad.size()));
  check(out_.good(), temporary_.string(), ": write failed (disk full?)");
}

void TarWriter::finish() {
  const std::string end(2 * kBlock, '\0');
  out_.write(end.data(), static_cast<std::streamsize>(end.size()));
  out_.close();
  check(!out_.fail(), temporary_.string(), ": write failed (disk full?)");
  fs::rename(temporary_, path_);
  finished_ = true;
}

}  // namespace mmlearn::data
