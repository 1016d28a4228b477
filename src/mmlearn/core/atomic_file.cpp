#include "mmlearn/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "mmlearn/core/error.h"

namespace mmlearn {
namespace fs = std::filesystem;

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  if (target_.has_parent_path()) fs::create_directories(target_.parent_path());
  std::random_device rd;
  temp_ = target_;
  temp_ += str_cat(".tmp-", ::getpid(), "-", rd());
  file_ = std::fopen(temp_.c_str(), "wb");
  check(file_ != nullptr, "cannot create ", temp_.string(), ": ", std::strerror(errno),
        " (check that the folder is writable)");
}

AtomicFile::~AtomicFile() {
  if (file_) {
    std::fclose(file_);
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicFile::write(const void* data, size_t size) {
  check(file_ != nullptr, "write to ", target_.string(), " after commit");
  if (size == 0) return;
  check(std::fwrite(data, 1, size, file_) == size, "cannot write ", temp_.string(), ": ",
        std::strerror(errno), " (is the disk full?)");
}

void AtomicFile::commit() {
  check(file_ != nullptr, "commit of ", target_.string(), " twice");
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  int saved = errno;
  std::fclose(file_);
  file_ = nullptr;
  if (!ok || std::rename(temp_.c_str(), target_.c_str()) != 0) {
    if (ok) saved = errno;
    std::error_code ec;
    fs::remove(temp_, ec);
    throw Error(str_cat("cannot write ", target_.string(), ": ", std::strerror(saved)));
  }
  // The rename is durable only once the folder entry is on disk.
  sync_directory(target_.has_parent_path() ? target_.parent_path() : fs::path("."));
}

void sync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_file_atomic(const fs::path& target, std::string_view bytes) {
  AtomicFile out(target);
  out.write(bytes);
  out.commit();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open ", path.string(), ": ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  check(!in.bad(), "cannot read ", path.string());
  return buffer.str();
}

nlohmann::json read_json_file(const fs::path& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat(path.string(), ": not valid JSON (", e.what(), ")"));
  }
}

}  // namespace mmlearn
