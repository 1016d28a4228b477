#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/safetensors.h"

using namespace mmlearn;
namespace fs = std::filesystem;

namespace {

// Writes a safetensors file from a raw header and data, for hostile-input tests.
fs::path write_raw(const fs::path& path, const std::string& header, const std::string& data,
                   uint64_t claimed_header_size = UINT64_MAX) {
  uint64_t n = claimed_header_size == UINT64_MAX ? header.size() : claimed_header_size;
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << data;
  return path;
}

std::string open_error(const fs::path& path) {
  try {
    SafetensorsFile file(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtype) {
  auto dir = test::temp_dir("st");
  TensorMap tensors;
  for (auto dtype : {torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kInt64,
                     torch::kInt32, torch::kInt16, torch::kInt8, torch::kUInt8, torch::kBool}) {
    auto t = (torch::randn({3, 5}) * 10).to(dtype);
    tensors[std::string("t_") + c10::toString(dtype)] = t;
  }
  tensors["scalar"] = torch::tensor(3.5);
  tensors["empty"] = torch::empty({0, 4});
  save_safetensors(dir / "a.safetensors", tensors, {{"format", "pt"}});
  SafetensorsFile file(dir / "a.safetensors");
  EXPECT_EQ(file.metadata().at("format"), "pt");
  ASSERT_EQ(file.entries().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    auto back = file.tensor(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(back, t)) << name;
  }
}

TEST(Safetensors, ReturnedTensorsAreCopyOnWrite) {
  auto dir = test::temp_dir("st");
  save_safetensors(dir / "a.safetensors", {{"w", torch::ones({4})}});
  {
    SafetensorsFile file(dir / "a.safetensors");
    auto w = file.tensor("w");
    w.mul_(5);  // must not reach the file
  }
  EXPECT_TRUE(torch::equal(load_safetensors(dir / "a.safetensors").at("w"), torch::ones({4})));
}

TEST(Safetensors, RejectsHostileAndTruncatedFiles) {
  auto dir = test::temp_dir("st");
  const std::string ok_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(open_error(write_raw(dir / "ok", ok_header, std::string(8, '\0'))), "");

  std::ofstream(dir / "short", std::ios::binary) << "abcd";
  EXPECT_NE(open_error(dir / "short").find("truncated"), std::string::npos);
  EXPECT_NE(open_error(write_raw(dir / "empty_header", "", "")).find("not valid JSON"), std::string::npos);
  auto huge = open_error(write_raw(dir / "huge", ok_header, std::string(8, '\0'), 1ull << 40));
  EXPECT_NE(huge.find("exceeds the limit"), std::string::npos) << huge;
  auto past = open_error(write_raw(dir / "past", ok_header, std::string(8, '\0'), 4096));
  EXPECT_NE(past.find("past the end"), std::string::npos) << past;
  auto json = open_error(write_raw(dir / "json", "{not json", ""));
  EXPECT_NE(json.find("not valid JSON"), std::string::npos) << json;
  auto range = open_error(write_raw(dir / "range", ok_header, std::string(4, '\0')));
  EXPECT_NE(range.find("\"a\""), std::string::npos) << range;
  auto overlap = open_error(write_raw(
      dir / "overlap",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      std::string(12, '\0')));
  EXPECT_NE(overlap.find("overlaps"), std::string::npos) << overlap;
  auto size = open_error(write_raw(dir / "size", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                                   std::string(8, '\0')));
  EXPECT_NE(size.find("needs"), std::string::npos) << size;
  auto dtype = open_error(write_raw(dir / "dtype", R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})",
                                    std::string(8, '\0')));
  EXPECT_NE(dtype.find("unsupported dtype"), std::string::npos) << dtype;
  auto negative = open_error(write_raw(
      dir / "neg", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0')));
  EXPECT_NE(negative.find("non-negative"), std::string::npos) << negative;
  // A shape whose element count overflows 64 bits must not wrap around to a small size.
  auto overflow = open_error(write_raw(
      dir / "overflow", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})",
      std::string(8, '\0')));
  EXPECT_NE(overflow.find("needs more bytes"), std::string::npos) << overflow;
  auto gap = open_error(write_raw(dir / "gap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                  std::string(12, '\0')));
  EXPECT_NE(gap.find("gap"), std::string::npos) << gap;
  EXPECT_NE(open_error(dir / "missing").find("cannot open"), std::string::npos);
}

TEST(Safetensors, EveryTruncationOfAValidFileIsAnErrorNotACrash) {
  auto dir = test::temp_dir("st");
  save_safetensors(dir / "full", {{"a", torch::randn({3, 3})}, {"b", torch::arange(5)}});
  std::ifstream in(dir / "full", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  for (size_t n = 0; n < bytes.size(); n += 3) {
    std::ofstream(dir / "cut", std::ios::binary) << bytes.substr(0, n);
    EXPECT_THROW(SafetensorsFile(dir / "cut"), Error) << "length " << n;
  }
}
