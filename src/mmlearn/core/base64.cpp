#include "mmlearn/core/base64.h"

#include <array>

#include "mmlearn/core/error.h"

namespace mmlearn {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> decoding_table() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}

}  // namespace

std::string decode_base64(std::string_view text, int64_t max_bytes, const std::string& what) {
  static constexpr auto kTable = decoding_table();
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  check(text.size() % 4 != 1, what, ": not valid base64 (its length is not that of any encoding)");
  const int64_t size = static_cast<int64_t>(text.size()) * 3 / 4;
  check(size <= max_bytes, what, ": ", size, " bytes, more than the limit of ", max_bytes);
  std::string out;
  out.reserve(static_cast<size_t>(size));
  uint32_t bits = 0;
  int count = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const int8_t v = kTable[static_cast<uint8_t>(text[i])];
    check(v >= 0, what, ": not valid base64 (character ", i + 1, " is not in the base64 alphabet)");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    if (++count == 4) {
      out.push_back(static_cast<char>(bits >> 16));
      out.push_back(static_cast<char>(bits >> 8));
      out.push_back(static_cast<char>(bits));
      bits = 0;
      count = 0;
    }
  }
  if (count == 2) out.push_back(static_cast<char>(bits >> 4));
  if (count == 3) {
    out.push_back(static_cast<char>(bits >> 10));
    out.push_back(static_cast<char>(bits >> 2));
  }
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t bits = 0;
    for (size_t k = 0; k < 3; ++k) bits = (bits << 8) | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out.push_back(k <= n ? kAlphabet[(bits >> (18 - 6 * k)) & 63] : '=');
  }
  return out;
}

}  // namespace mmlearn
