#include "mmlearn/core/zip_archive.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mmlearn/core/error.h"

namespace mmlearn {
namespace fs = std::filesystem;

namespace {

// Record signatures and fixed sizes from the ZIP specification (PKWARE APPNOTE.TXT).
constexpr uint64_t kLocalSignature = 0x04034b50, kCentralSignature = 0x02014b50, kEndSignature = 0x06054b50,
                   kZip64EndSignature = 0x06064b50, kZip64LocatorSignature = 0x07064b50;
constexpr uint64_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kZip64EndSize = 56,
                   kZip64LocatorSize = 20;
constexpr uint64_t kMaxCommentSize = 0xffff;
constexpr uint64_t kZip64Marker = 0xffffffff;  // a 32-bit field whose value is in the ZIP64 extra field

uint64_t le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

struct ZipArchive::Mapping {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  ~Mapping() {
    if (data != nullptr) ::munmap(const_cast<uint8_t*>(data), size);
  }
};

ZipArchive::ZipArchive(const fs::path& path) : path_(path) {
  const std::string where = path.string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "cannot open ", where, ": ", std::strerror(errno));
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  auto mapping = std::make_shared<Mapping>();
  mapping->size = regular ? static_cast<uint64_t>(st.st_size) : 0;
  void* address = MAP_FAILED;
  if (mapping->size >= kEndSize) address = ::mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  ::close(fd);
  check(regular, where, ": not a regular file");
  check(mapping->size >= kEndSize, where, ": not a zip archive (only ", mapping->size,
        " bytes): the file is truncated or of another format");
  check(address != MAP_FAILED, "cannot map ", where, ": ", std::strerror(map_error));
  mapping->data = static_cast<const uint8_t*>(address);
  mapping_ = mapping;
  const uint8_t* bytes = mapping->data;
  const uint64_t size = mapping->size;

  // The end record is the last thing in the file, followed only by a comment of up to 64 KiB.
  uint64_t end = size - kEndSize;
  const uint64_t lowest = size - kEndSize > kMaxCommentSize ? size - kEndSize - kMaxCommentSize : 0;
  while (!(le(bytes + end, 4) == kEndSignature && le(bytes + end + 20, 2) == size - end - kEndSize)) {
    check(end > lowest, where,
          ": not a zip archive (no end-of-central-directory record): the file is truncated or of another "
          "format");
    --end;
  }
  uint64_t count = le(bytes + end + 10, 2), directory_size = le(bytes + end + 12, 4);
  uint64_t directory = le(bytes + end + 16, 4), directory_limit = end;
  if (end >= kZip64LocatorSize && le(bytes + end - kZip64LocatorSize, 4) == kZip64LocatorSignature) {
    const uint64_t locator = end - kZip64LocatorSize, zip64_end = le(bytes + locator + 8, 8);
    check(zip64_end <= locator && locator - zip64_end >= kZip64EndSize &&
              le(bytes + zip64_end, 4) == kZip64EndSignature,
          where, ": corrupt zip archive: the ZIP64 end record at offset ", zip64_end, " is missing");
    count = le(bytes + zip64_end + 32, 8);
    directory_size = le(bytes + zip64_end + 40, 8);
    directory = le(bytes + zip64_end + 48, 8);
    directory_limit = zip64_end;
  }
  check(directory <= directory_limit && directory_size <= directory_limit - directory, where,
        ": corrupt zip archive: the central directory (", directory_size, " bytes at offset ", directory,
        ") lies outside the file; it is truncated or damaged");
  check(count <= directory_size / kCentralSize, where, ": corrupt zip archive: ", count,
        " entries cannot fit in a central directory of ", directory_size, " bytes");

  entries_.reserve(count);
  const uint64_t directory_end = directory + directory_size;
  for (uint64_t i = 0, pos = directory; i < count; ++i) {
    check(directory_end - pos >= kCentralSize && le(bytes + pos, 4) == kCentralSignature, where,
          ": corrupt zip archive: central directory entry ", i, " at offset ", pos, " is damaged");
    const uint8_t* header = bytes + pos;
    const uint64_t name_size = le(header + 28, 2), extra_size = le(header + 30, 2);
    const uint64_t record_size = kCentralSize + name_size + extra_size + le(header + 32, 2);
    check(record_size <= directory_end - pos, where, ": corrupt zip archive: central directory entry ", i,
          " runs past the directory's end");
    ZipEntry entry;
    entry.name.assign(reinterpret_cast<const char*>(header + kCentralSize), name_size);
    entry.encrypted = le(header + 8, 2) & 1;
    entry.method = static_cast<uint16_t>(le(header + 10, 2));
    uint64_t stored_size = le(header + 20, 4), size_uncompressed = le(header + 24, 4);
    uint64_t local = le(header + 42, 4);
    const std::string what = str_cat(where, ": zip entry \"", entry.name, "\"");

    for (uint64_t at = kCentralSize + name_size, extra_end = at + extra_size; extra_end - at >= 4;) {
      const uint64_t id = le(header + at, 2), n = le(header + at + 2, 2);
      check(n <= extra_end - at - 4, what, ": extra field runs past its record (corrupt archive)");
      if (id == 1) {  // ZIP64: the 64-bit value of each field above that holds 0xffffffff, in this order
        uint64_t value = at + 4;
        for (uint64_t* field : {&size_uncompressed, &stored_size, &local}) {
          if (*field != kZip64Marker) continue;
          check(value + 8 <= at + 4 + n, what, ": ZIP64 extra field is too short (corrupt archive)");
          *field = le(header + value, 8);
          value += 8;
        }
      }
      at += 4 + n;
    }

    check(local <= size && size - local >= kLocalSize && le(bytes + local, 4) == kLocalSignature, what,
          ": no local header at offset ", local, " (the file is truncated or corrupt)");
    // The local header's name and extra field (torch pads it to align tensor data) precede the data.
    entry.offset = local + kLocalSize + le(bytes + local + 26, 2) + le(bytes + local + 28, 2);
    entry.size = stored_size;
    check(entry.offset <= size && entry.size <= size - entry.offset, what, ": its ", entry.size,
          " bytes at offset ", entry.offset, " run past the end of the file (", size,
          " bytes): the file is truncated");
    check(entry.method != 0 || stored_size == size_uncompressed, what, ": stored entry has size ",
          stored_size, " but claims ", size_uncompressed, " uncompressed bytes (corrupt archive)");
    check(index_.emplace(entry.name, entries_.size()).second, what,
          " appears twice (corrupt or forged archive)");
    entries_.push_back(std::move(entry));
    pos += record_size;
  }
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::string_view ZipArchive::read(const ZipEntry& entry) const {
  check(!entry.encrypted, path_.string(), ": zip entry \"", entry.name,
        "\" is encrypted, which is not supported");
  check(entry.method == 0, path_.string(), ": zip entry \"", entry.name, "\" is compressed (method ",
        entry.method,
        "); only uncompressed entries are supported. torch.save never compresses, so the file was repacked: "
        "save it again with torch.save");
  return {reinterpret_cast<const char*>(mapping_->data + entry.offset), entry.size};
}

}  // namespace mmlearn
