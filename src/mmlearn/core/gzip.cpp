#include "mmlearn/core/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <string_view>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"

namespace mmlearn {
namespace fs = std::filesystem;

std::string read_gzip_file(const fs::path& path, uint64_t max_bytes) {
  const std::string name = path.string();
  std::error_code error;
  const uintmax_t file_size = fs::file_size(path, error);
  check(!error, "cannot open ", name, ": ", error.message());
  check(file_size <= max_bytes, name, ": ", file_size, " bytes, more than the limit of ", max_bytes);
  const std::string in = read_file(path);
  check(in.size() >= 2 && in[0] == '\x1f' && in[1] == '\x8b', name,
        ": not a gzip file (it does not start with the bytes 1f 8b)");

  z_stream z{};
  // 16 + MAX_WBITS: expect the gzip wrapper (header, CRC-32 and length trailer) around the deflate data.
  check(inflateInit2(&z, 16 + MAX_WBITS) == Z_OK, name, ": cannot start zlib's inflate");
  struct InflateEnd {
    z_stream* z;
    ~InflateEnd() { inflateEnd(z); }
  } end{&z};

  // Room for one byte beyond the limit tells a stream that exceeds it from one that ends exactly there.
  const uint64_t capacity = std::min<uint64_t>(max_bytes, uint64_t{1} << 62) + 1;
  std::string_view rest = in;
  std::string out;
  size_t filled = 0;
  for (;;) {
    if (filled == out.size())
      out.resize(std::min<uint64_t>(capacity, std::max<size_t>(size_t{1} << 16, 2 * out.size())));
    const auto in_chunk = static_cast<uInt>(std::min<size_t>(rest.size(), UINT_MAX));
    const auto out_chunk = static_cast<uInt>(std::min<size_t>(out.size() - filled, UINT_MAX));
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(rest.data()));
    z.avail_in = in_chunk;
    z.next_out = reinterpret_cast<Bytef*>(out.data() + filled);
    z.avail_out = out_chunk;
    const int status = inflate(&z, Z_NO_FLUSH);
    rest.remove_prefix(in_chunk - z.avail_in);
    filled += out_chunk - z.avail_out;
    check(filled <= max_bytes, name, ": decompresses to more than the limit of ", max_bytes, " bytes");
    if (status == Z_STREAM_END) {
      // Another member may follow; zero bytes after the last one are padding, which gzip.open skips too.
      rest.remove_prefix(std::min(rest.size(), rest.find_first_not_of('\0')));
      if (rest.empty()) break;
      check(inflateReset(&z) == Z_OK, name, ": cannot restart zlib's inflate");
    } else if (status == Z_MEM_ERROR) {
      throw Error(str_cat(name, ": out of memory while decompressing"));
    } else if (status != Z_OK && status != Z_BUF_ERROR) {
      throw Error(str_cat(name, ": corrupt gzip data at compressed byte ", in.size() - rest.size(), " (",
                          z.msg ? z.msg : "invalid data", ")"));
    } else if (rest.empty() && z.avail_out > 0) {
      // All input consumed, room left for output, and yet no end of stream: the file was cut short.
      throw Error(str_cat(name, ": truncated gzip file (the compressed data ends before the stream does)"));
    }
  }
  out.resize(filled);
  return out;
}

}  // namespace mmlearn
