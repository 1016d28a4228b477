// Image decoding and encoding: PNG colour types and bit depths, JPEG, box downscaling, and refusal of
// oversized, corrupt and non-image input with errors that name the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

// clang-format off
#include <jpeglib.h>
#include <png.h>
// clang-format on

#include "../test_util.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/image_io.h"

namespace mmlearn::data {
namespace {
namespace fs = std::filesystem;

// A PNG written directly with libpng, so tests cover layouts that encode_png never produces.
struct PngSpec {
  int width = 0, height = 0, color_type = PNG_COLOR_TYPE_RGB, bit_depth = 8;
  bool interlaced = false;
  std::vector<png_color> palette = {};
  std::vector<uint8_t> transparency = {};  // tRNS entries for a palette
  std::vector<uint8_t> data = {};          // rows packed as libpng expects (16-bit samples big-endian)
};

void append_to_string(png_structp png, png_bytep data, size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}

// C-style (no destructible locals) because libpng longjmps on error.
bool write_spec_c(const PngSpec* spec, std::string* out) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, append_to_string, nullptr);
  png_set_IHDR(png, info, spec->width, spec->height, spec->bit_depth, spec->color_type,
               spec->interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!spec->palette.empty()) png_set_PLTE(png, info, spec->palette.data(), int(spec->palette.size()));
  if (!spec->transparency.empty()) {
    png_set_tRNS(png, info, spec->transparency.data(), int(spec->transparency.size()), nullptr);
  }
  png_write_info(png, info);
  const size_t stride = spec->data.size() / size_t(spec->height);
  const int passes = spec->interlaced ? png_set_interlace_handling(png) : 1;
  for (int pass = 0; pass < passes; ++pass) {
    for (int y = 0; y < spec->height; ++y) {
      png_write_row(png, const_cast<png_bytep>(spec->data.data() + size_t(y) * stride));
    }
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

std::string write_spec(const PngSpec& spec) {
  std::string out;
  EXPECT_TRUE(write_spec_c(&spec, &out));
  return out;
}

std::string encode_jpeg(const Image& image, int quality, bool grey = false) {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr err{};
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = image.width;
  cinfo.image_height = image.height;
  cinfo.input_components = grey ? 1 : 3;
  cinfo.in_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row(size_t(image.width) * 3);
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* src = image.rgb.data() + size_t(y) * image.width * 3;
    if (grey) {
      for (int x = 0; x < image.width; ++x) row[size_t(x)] = src[x * 3];
    } else {
      std::copy(src, src + image.width * 3, row.begin());
    }
    JSAMPROW p = row.data();
    jpeg_write_scanlines(&cinfo, &p, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string out(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  return out;
}

Image pattern_image(int width, int height) {
  Image image{width, height, std::vector<uint8_t>(size_t(width) * height * 3)};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = image.rgb.data() + (size_t(y) * width + x) * 3;
      p[0] = uint8_t(x * 7 + y);
      p[1] = uint8_t(y * 11 + 3);
      p[2] = uint8_t((x * y) ^ 0x5a);
    }
  }
  return image;
}

// Smooth content that JPEG reproduces closely.
Image gradient_image(int width, int height) {
  Image image{width, height, std::vector<uint8_t>(size_t(width) * height * 3)};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = image.rgb.data() + (size_t(y) * width + x) * 3;
      p[0] = uint8_t(40 + 160 * x / width);
      p[1] = uint8_t(200 - 150 * y / height);
      p[2] = 90;
    }
  }
  return image;
}

std::string error_of(const std::string& bytes, const std::string& name, const DecodeOptions& options = {}) {
  try {
    decode_image(bytes, name, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

uint32_t crc32_of(const std::string& bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

// A signature and a valid IHDR chunk claiming width x height, and nothing else.
std::string png_header_only(uint32_t width, uint32_t height) {
  std::string ihdr = "IHDR" + be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + be32(crc32_of(ihdr));
}

fs::path temp_path(const std::string& name) { return mmlearn::test::temp_dir("files") / name; }

TEST(ImageIo, PngRoundTripIsExactAndDeterministic) {
  const Image image = pattern_image(37, 23);
  const std::string bytes = encode_png(image);
  EXPECT_EQ(bytes, encode_png(image));
  const Image decoded = decode_image(bytes, "mem.png");
  EXPECT_EQ(decoded.width, 37);
  EXPECT_EQ(decoded.height, 23);
  EXPECT_EQ(decoded.rgb, image.rgb);
  for (int level : {0, 3, 9}) EXPECT_EQ(decode_image(encode_png(image, level), "x.png").rgb, image.rgb);
}

TEST(ImageIo, WritePngAndReadImageFromFile) {
  const fs::path path = temp_path("round.png");
  const Image image = pattern_image(20, 30);
  write_png(path, image);
  const Image decoded = read_image(path);
  EXPECT_EQ(decoded.width, 20);
  EXPECT_EQ(decoded.rgb, image.rgb);
  fs::remove(path);
}

TEST(ImageIo, RgbaIsCompositedOverBlack) {
  PngSpec spec{.width = 3, .height = 1, .color_type = PNG_COLOR_TYPE_RGBA};
  spec.data = {200, 100, 50, 255, 200, 100, 50, 0, 200, 100, 50, 128};
  const Image image = decode_image(write_spec(spec), "rgba.png");
  ASSERT_EQ(image.rgb.size(), 9u);
  EXPECT_EQ(std::vector<uint8_t>(image.rgb.begin(), image.rgb.begin() + 6),
            (std::vector<uint8_t>{200, 100, 50, 0, 0, 0}));
  EXPECT_NEAR(image.rgb[6], 200 * 128 / 255.0, 1.0);
  EXPECT_NEAR(image.rgb[7], 100 * 128 / 255.0, 1.0);
  EXPECT_NEAR(image.rgb[8], 50 * 128 / 255.0, 1.0);
}

TEST(ImageIo, GreyAndGreyAlphaBecomeRgb) {
  PngSpec grey{.width = 3, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY};
  grey.data = {0, 77, 255};
  EXPECT_EQ(decode_image(write_spec(grey), "g.png").rgb,
            (std::vector<uint8_t>{0, 0, 0, 77, 77, 77, 255, 255, 255}));

  PngSpec grey_alpha{.width = 2, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA};
  grey_alpha.data = {90, 255, 90, 0};
  EXPECT_EQ(decode_image(write_spec(grey_alpha), "ga.png").rgb, (std::vector<uint8_t>{90, 90, 90, 0, 0, 0}));

  PngSpec one_bit{.width = 8, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 1};
  one_bit.data = {0b10100000};
  const Image bits = decode_image(write_spec(one_bit), "1bit.png");
  ASSERT_EQ(bits.width, 8);
  EXPECT_EQ(bits.rgb[0], 255);
  EXPECT_EQ(bits.rgb[3], 0);
  EXPECT_EQ(bits.rgb[6], 255);
  EXPECT_EQ(bits.rgb[21], 0);
}

TEST(ImageIo, PaletteWithTransparencyBecomesRgb) {
  PngSpec spec{.width = 4, .height = 1, .color_type = PNG_COLOR_TYPE_PALETTE, .bit_depth = 2};
  spec.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  spec.transparency = {255, 255, 255, 0};  // entry 3 fully transparent
  spec.data = {0b00011011};                // indices 0, 1, 2, 3
  EXPECT_EQ(decode_image(write_spec(spec), "pal.png").rgb,
            (std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0}));
}

TEST(ImageIo, SixteenBitIsReducedToEightBit) {
  PngSpec spec{.width = 2, .height = 1, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 16};
  // v * 257 is the exact 16-bit equivalent of the 8-bit value v.
  for (int v : {0, 12, 200, 255, 128, 7}) {
    spec.data.push_back(uint8_t((v * 257) >> 8));
    spec.data.push_back(uint8_t((v * 257) & 0xff));
  }
  EXPECT_EQ(decode_image(write_spec(spec), "16.png").rgb, (std::vector<uint8_t>{0, 12, 200, 255, 128, 7}));
}

TEST(ImageIo, InterlacedPngMatchesNonInterlaced) {
  const Image image = pattern_image(19, 13);
  PngSpec spec{.width = 19, .height = 13, .interlaced = true};
  spec.data = image.rgb;
  EXPECT_EQ(decode_image(write_spec(spec), "adam7.png").rgb, image.rgb);
  const Image small = decode_image(write_spec(spec), "adam7.png", {.max_side = 6});
  EXPECT_EQ(small.width, 9);
  EXPECT_EQ(small.height, 6);
}

TEST(ImageIo, MaxSideBoxFiltersToExpectedSizeAndAverages) {
  // R grows with x, G with y: each 4x4 block average is known in closed form.
  Image image{64, 40, std::vector<uint8_t>(64 * 40 * 3)};
  for (int y = 0; y < 40; ++y) {
    for (int x = 0; x < 64; ++x) {
      uint8_t* p = image.rgb.data() + (size_t(y) * 64 + x) * 3;
      p[0] = uint8_t(x * 4);
      p[1] = uint8_t(y * 5);
      p[2] = (x + y) % 2 ? 200 : 0;  // checkerboard: every block averages 100
    }
  }
  const Image small = decode_image(encode_png(image), "grad.png", {.max_side = 10});  // factor 40 / 10 = 4
  ASSERT_EQ(small.width, 16);
  ASSERT_EQ(small.height, 10);
  for (int j = 0; j < 10; ++j) {
    for (int k = 0; k < 16; ++k) {
      const uint8_t* p = small.rgb.data() + (size_t(j) * 16 + k) * 3;
      EXPECT_NEAR(p[0], 16 * k + 6, 1) << "block " << j << "," << k;
      EXPECT_NEAR(p[1], 20 * j + 7.5, 1) << "block " << j << "," << k;
      EXPECT_EQ(p[2], 100);
    }
  }
  // Shorter side stays >= max_side: 40 / 12 = 3 -> 21x13.
  const Image thirds = decode_image(encode_png(image), "grad.png", {.max_side = 12});
  EXPECT_EQ(thirds.width, 21);
  EXPECT_EQ(thirds.height, 13);
  // Never upscales.
  const Image same = decode_image(encode_png(image), "grad.png", {.max_side = 500});
  EXPECT_EQ(same.width, 64);
  EXPECT_EQ(same.rgb, image.rgb);
}

TEST(ImageIo, OversizedHeaderIsRefusedBeforeAllocating) {
  const std::string bytes = png_header_only(50000, 50000);
  const std::string message = error_of(bytes, "huge.png");
  EXPECT_NE(message.find("huge.png"), std::string::npos) << message;
  EXPECT_NE(message.find("50000x50000"), std::string::npos) << message;
  EXPECT_NE(message.find("max_pixels"), std::string::npos) << message;

  // Allowed by the limit, streamed with max_side: must fail on the missing data, quickly, without
  // allocating 7.5 GB.
  const auto start = std::chrono::steady_clock::now();
  const std::string streamed = error_of(bytes, "huge.png", {.max_pixels = 3'000'000'000, .max_side = 224});
  EXPECT_NE(streamed.find("huge.png: not a valid PNG"), std::string::npos) << streamed;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2.0);

  EXPECT_NE(error_of(encode_png(pattern_image(100, 100)), "a.png", {.max_pixels = 5000}).find("100x100"),
            std::string::npos);
}

TEST(ImageIo, CorruptInputGivesErrorsNamingTheFile) {
  const std::string png = encode_png(pattern_image(40, 40));
  const std::string truncated = error_of(png.substr(0, png.size() / 2), "images/3.png");
  EXPECT_EQ(truncated.rfind("images/3.png: not a valid PNG: ", 0), 0u) << truncated;

  std::string flipped = png;
  flipped[png.size() / 2] ^= 0x55;  // inside IDAT: the CRC check fails
  EXPECT_EQ(error_of(flipped, "f.png").rfind("f.png: not a valid PNG", 0), 0u);

  EXPECT_EQ(error_of("", "empty.png").rfind("empty.png: empty file", 0), 0u);
  EXPECT_EQ(error_of("hello, world\n", "notes.txt"),
            "notes.txt: not an image: expected PNG or JPEG signature");
  EXPECT_NE(error_of("GIF89a....", "a.gif").find("GIF"), std::string::npos);

  const std::string jpeg = encode_jpeg(gradient_image(64, 64), 90);
  const std::string bad_jpeg = error_of(jpeg.substr(0, jpeg.size() / 2), "cut.jpg");
  EXPECT_EQ(bad_jpeg.rfind("cut.jpg: not a valid JPEG: ", 0), 0u) << bad_jpeg;
  EXPECT_EQ(error_of(jpeg.substr(0, 20), "short.jpg").rfind("short.jpg: not a valid JPEG: ", 0), 0u);

  const fs::path text = temp_path("notes.txt");
  std::ofstream(text) << "not an image";
  try {
    read_image(text);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text.string()), std::string::npos) << e.what();
  }
  fs::remove(text);
  EXPECT_THROW(read_image(temp_path("missing.png")), Error);
}

TEST(ImageIo, JpegRoundTripWithinTolerance) {
  const Image image = gradient_image(48, 32);
  const Image decoded = decode_image(encode_jpeg(image, 95), "g.jpg");
  ASSERT_EQ(decoded.width, 48);
  ASSERT_EQ(decoded.height, 32);
  double total = 0;
  int worst = 0;
  for (size_t i = 0; i < image.rgb.size(); ++i) {
    const int diff = std::abs(int(decoded.rgb[i]) - int(image.rgb[i]));
    total += diff;
    worst = std::max(worst, diff);
  }
  EXPECT_LT(total / double(image.rgb.size()), 2.0);
  EXPECT_LE(worst, 12);

  const fs::path path = temp_path("g.jpg");
  std::ofstream(path, std::ios::binary) << encode_jpeg(image, 95);
  EXPECT_EQ(read_image(path).rgb, decoded.rgb);
  fs::remove(path);

  const Image grey = decode_image(encode_jpeg(image, 95, /*grey=*/true), "grey.jpg");
  for (size_t i = 0; i < grey.rgb.size(); i += 3) {
    EXPECT_EQ(grey.rgb[i], grey.rgb[i + 1]);
    EXPECT_EQ(grey.rgb[i], grey.rgb[i + 2]);
  }
}

TEST(ImageIo, JpegMaxSideDownscales) {
  const Image image = gradient_image(256, 128);
  const Image small = decode_image(encode_jpeg(image, 90), "big.jpg", {.max_side = 20});
  EXPECT_GE(std::min(small.width, small.height), 20);
  EXPECT_LE(std::min(small.width, small.height), 39);
  EXPECT_EQ(small.width, 2 * small.height);
  // The mean colour survives the downscale.
  double mean_in = 0, mean_out = 0;
  for (size_t i = 0; i < image.rgb.size(); i += 3) mean_in += image.rgb[i];
  for (size_t i = 0; i < small.rgb.size(); i += 3) mean_out += small.rgb[i];
  EXPECT_NEAR(mean_out / double(small.rgb.size() / 3), mean_in / double(image.rgb.size() / 3), 4.0);
}

TEST(ImageIo, EncodeRejectsInconsistentImage) {
  EXPECT_THROW(encode_png(Image{}), Error);
  EXPECT_THROW(encode_png(Image{2, 2, std::vector<uint8_t>(5)}), Error);
}

}  // namespace
}  // namespace mmlearn::data
