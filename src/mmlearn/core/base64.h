// Base64 (RFC 4648, standard alphabet) decoding, for images and audio that arrive inside JSON. Padding is
// optional, whitespace is refused, and the decoded size is bounded before anything is allocated.
//
//   std::string bytes = mmlearn::decode_base64(field, 32 << 20, "image");   // Error on bad input
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mmlearn {

// Throws mmlearn::Error naming `what` when `text` is not base64 or decodes to more than max_bytes.
std::string decode_base64(std::string_view text, int64_t max_bytes, const std::string& what);
std::string encode_base64(std::string_view bytes);

}  // namespace mmlearn
