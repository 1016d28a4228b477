// Image decoding (PNG, JPEG) and PNG encoding with bounded memory.
//
// Real collections hold PNGs of hundreds of megapixels, and a hostile header may claim 50,000 x 50,000, so
// the decoders check the size a header claims before allocating anything, and with `max_side` they decode
// row by row into an already downscaled image: peak memory is the output plus a few rows, never the full
// image (interlaced PNGs excepted: they are decoded whole, within a 256 MiB budget).
// Every failure (corrupt, truncated, empty, not an image, too large) is an mmlearn::Error naming the file.
//
//   using namespace mmlearn::data;
//   Image img = read_image("images/3.png", {.max_side = 224});   // shorter side >= 224, box-filtered
//   write_png("thumb.png", img);
//   std::string bytes = encode_png(img, /*compression_level=*/3);
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mmlearn::data {

// 8-bit RGB, interleaved (r, g, b, r, g, b, ...), rows top to bottom; rgb.size() == width * height * 3.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  // Set only by DecodeOptions::pil, for the PIL operations whose result depends on them (vision/resample.h):
  // the file's alpha channel, one byte per pixel (empty when the file has none), and whether the file holds
  // palette indices or 1-bit grey, which PIL resizes with nearest neighbour whatever filter is asked for.
  std::vector<uint8_t> alpha;
  bool indexed = false;
};

struct DecodeOptions {
  // Images whose header claims more pixels are refused before any pixel memory is allocated.
  int64_t max_pixels = 1'000'000'000;
  // Images whose longer side is more than this many times the shorter are refused the same way.
  int64_t max_aspect = 100;
  // > 0: decode down by an integer box filter (area average) so that the shorter side is >= max_side but as
  // small as an integer factor allows; never upscales. 0: full size.
  int max_side = 0;
  // true: the pixels of PIL's Image.open(path) as its convert("RGB") gives them, so that PIL-based reference
  // preprocessing can be reproduced bit for bit (vision/clip_preprocess.h): alpha is not composited but left
  // as stored (and kept in Image::alpha), tRNS transparency is ignored, 16-bit samples keep their high byte
  // (16-bit grey saturates at 255, as PIL's mode "I" does), and palette and 1-bit images are flagged
  // Image::indexed. JPEGs decode as without it (same libjpeg settings as PIL). Needs max_side = 0.
  bool pil = false;
};

// Decodes PNG or JPEG bytes (detected by their signature). `name_for_errors` prefixes every error message.
// Grey, grey+alpha, palette, RGBA and 16-bit PNGs come out as 8-bit RGB; alpha is composited over black
// (unless DecodeOptions::pil).
// Grey and CMYK JPEGs come out as RGB.
Image decode_image(const std::string& bytes, const std::string& name_for_errors, const DecodeOptions& = {});

// Like decode_image, streaming from the file so that the compressed bytes are not held in memory either.
Image read_image(const std::filesystem::path& path, const DecodeOptions& = {});

// Encodes 8-bit RGB as PNG; identical input gives identical bytes (no time or text chunks).
std::string encode_png(const Image& image, int compression_level = 6);

// Writes encode_png(image) atomically (temporary file + rename).
void write_png(const std::filesystem::path& path, const Image& image);

}  // namespace mmlearn::data
