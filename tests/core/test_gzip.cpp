// read_gzip_file: round trips, concatenated members, the size limit, and damaged files.
#include <gtest/gtest.h>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/gzip.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;

std::string text_of(size_t n) {
  std::string text;
  for (size_t i = 0; text.size() < n; ++i) text += std::to_string(i * 7919 % 100003) + " ";
  text.resize(n);
  return text;
}

std::string error_of(const fs::path& path, uint64_t max_bytes = uint64_t{64} << 20) {
  return test::error_of([&] { read_gzip_file(path, max_bytes); });
}

TEST(Gzip, RoundTripsAndReadsConcatenatedMembers) {
  const fs::path dir = test::temp_dir("gz");
  const std::string text = text_of(300000);  // several output buffer growths
  write_file_atomic(dir / "one.gz", test::gzip(text));
  EXPECT_EQ(read_gzip_file(dir / "one.gz"), text);
  // Two members and trailing zero padding, as `cat a.gz b.gz` and some tape tools write.
  write_file_atomic(dir / "two.gz",
                    test::gzip(text.substr(0, 1000)) + test::gzip(text.substr(1000)) + std::string(5, '\0'));
  EXPECT_EQ(read_gzip_file(dir / "two.gz"), text);
  write_file_atomic(dir / "empty.gz", test::gzip(""));
  EXPECT_EQ(read_gzip_file(dir / "empty.gz"), "");
}

TEST(Gzip, ContentLimitIsEnforced) {
  const fs::path path = test::temp_dir("gz") / "a.gz";
  write_file_atomic(path, test::gzip(std::string(100000, 'a')));  // a few hundred bytes compressed
  EXPECT_EQ(read_gzip_file(path, 100000).size(), 100000u);
  EXPECT_NE(error_of(path, 100).find("more than the limit of 100"), std::string::npos) << error_of(path, 100);
}

TEST(Gzip, DamagedFilesNameTheFile) {
  const fs::path dir = test::temp_dir("gz");
  const std::string gz = test::gzip(text_of(50000));
  std::string flipped = gz;
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 16; ++i) flipped[i] = static_cast<char>(~flipped[i]);
  const std::pair<std::string, std::string> cases[] = {
      {gz.substr(0, gz.size() / 2), "truncated gzip file"},
      {gz.substr(0, gz.size() - 4), "truncated gzip file"},  // the length in the trailer is missing
      {flipped, "corrupt gzip data"},
      {gz + "PK\x03\x04", "corrupt gzip data"},  // what follows a member must be another member
      {"#version: 0.2\ni n\n", "not a gzip file"},
      {"", "not a gzip file"},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const fs::path path = dir / str_cat(i, ".gz");
    write_file_atomic(path, cases[i].first);
    EXPECT_NE(error_of(path).find(str_cat(path.string(), ": ", cases[i].second)), std::string::npos)
        << i << ": " << error_of(path);
  }
  EXPECT_NE(error_of(dir / "missing.gz").find("cannot open " + (dir / "missing.gz").string()),
            std::string::npos)
      << error_of(dir / "missing.gz");
}

}  // namespace
}  // namespace mmlearn
