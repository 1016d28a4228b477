// Reads gzip-compressed files (RFC 1952) with zlib, bounded in memory: files come from strangers, and a few
// kilobytes of gzip can expand to gigabytes.
//
//   std::string text = mmlearn::read_gzip_file("bpe_simple_vocab_16e6.txt.gz");
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace mmlearn {

// The decompressed content of all members (concatenated gzip streams, as `gzip -d` and Python's gzip.open
// read them). Throws mmlearn::Error naming the path when the file cannot be read, is not gzip, is corrupt
// or truncated, or when it or its content exceeds max_bytes.
std::string read_gzip_file(const std::filesystem::path& path, uint64_t max_bytes = uint64_t{64} << 20);

}  // namespace mmlearn
