#include "mmlearn/data/image_io.h"

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

// jpeglib.h uses FILE without including <cstdio>, and jerror.h needs jpeglib.h's types: order matters.
// clang-format off
#include <cstdio>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
// clang-format on

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"

// libpng and libjpeg report errors by longjmp. Each function below that calls setjmp is C-style: it holds no
// object with a destructor, and the longjmp only skips frames inside the C libraries, so no C++ destructor is
// ever bypassed. All state (vectors included) lives in a reader struct owned by the calling C++ function,
// which turns a `false` return into an mmlearn::Error and frees everything through ordinary destructors.

namespace mmlearn::data {
namespace {

// Interlaced PNGs cannot be decoded row by row (a row is final only after the last pass), so they need the
// whole image in memory; this caps that buffer.
constexpr int64_t kInterlacedBudgetBytes = int64_t{256} << 20;

// Where the compressed bytes come from: memory (decode_image) or an open file (read_image, which streams).
struct ByteSource {
  const unsigned char* data = nullptr;
  size_t size = 0, pos = 0;
  std::FILE* file = nullptr;
};

// Averages factor x factor blocks of incoming rows into the output image as the rows arrive, so memory is the
// output plus one row of sums. Trailing rows/columns that do not fill a whole block are dropped.
class BoxAccumulator {
 public:
  void start(int in_width, int in_height, int factor, Image* out) {
    factor_ = factor;
    out_ = out;
    out->width = in_width / factor;
    out->height = in_height / factor;
    out->rgb.assign(size_t(out->width) * size_t(out->height) * 3, 0);
    sums_.assign(factor > 1 ? size_t(out->width) * 3 : 0, 0);
    rows_in_band_ = 0;
    out_row_ = 0;
  }

  bool done() const { return out_row_ >= out_->height; }

  void add_row(const uint8_t* rgb) {
    if (done()) return;
    const size_t n = size_t(out_->width) * 3;
    uint8_t* dst = out_->rgb.data() + size_t(out_row_) * n;
    if (factor_ == 1) {
      std::memcpy(dst, rgb, n);
      ++out_row_;
      return;
    }
    const size_t step = size_t(factor_) * 3;
    for (size_t x = 0; x < size_t(out_->width); ++x) {
      const uint8_t* src = rgb + x * step;
      uint64_t* sum = sums_.data() + x * 3;
      for (size_t k = 0; k < step; k += 3) {
        sum[0] += src[k];
        sum[1] += src[k + 1];
        sum[2] += src[k + 2];
      }
    }
    if (++rows_in_band_ < factor_) return;
    const uint64_t area = uint64_t(factor_) * uint64_t(factor_);
    for (size_t i = 0; i < n; ++i) dst[i] = uint8_t((sums_[i] + area / 2) / area);
    std::fill(sums_.begin(), sums_.end(), 0);
    rows_in_band_ = 0;
    ++out_row_;
  }

 private:
  int factor_ = 1, rows_in_band_ = 0, out_row_ = 0;
  Image* out_ = nullptr;
  std::vector<uint64_t> sums_;
};

// The integer box factor: the largest that keeps the shorter side >= max_side (1 = no downscale).
int box_factor(int64_t width, int64_t height, int max_side) {
  if (max_side <= 0) return 1;
  return int(std::max<int64_t>(1, std::min(width, height) / max_side));
}

void check_pixel_limit(const std::string& name, int64_t width, int64_t height, const DecodeOptions& options) {
  check(width > 0 && height > 0, name, ": image header claims an empty image (", width, "x", height, ")");
  check(width * height <= options.max_pixels, name, ": image is ", width, "x", height, " (", width * height,
        " pixels), more than the limit of ", options.max_pixels,
        " pixels; raise DecodeOptions::max_pixels if the file is trusted");
  // A model sees a square crop of the shorter side: a 20000 x 1 strip would be resized to 1,280,000 x 64
  // first, work out of all proportion to its 53 bytes.
  const int64_t longer = std::max(width, height), shorter = std::min(width, height);
  check(longer <= options.max_aspect * shorter, name, ": image is ", width, "x", height,
        ", an aspect ratio over ", options.max_aspect, ":1 that no model input has (crop or pad it first)");
  // The output buffer holds width * height * 3 bytes in an int-indexed Image.
  check(width <= INT32_MAX && height <= INT32_MAX, name, ": image is ", width, "x", height,
        ", sides above 2^31 are not supported");
}

// Writes `width` RGB pixels from a row with 3 (RGB) or 4 (RGBA) channels. Alpha is composited over black,
// which is what a model sees for transparent regions in most image pipelines that drop alpha; or, given
// `alpha`, it is copied there and RGB left as stored, as PIL's convert("RGB") leaves it.
void to_rgb(const uint8_t* in, int channels, size_t width, uint8_t* out, uint8_t* alpha) {
  if (channels == 3) {
    std::memcpy(out, in, width * 3);
    return;
  }
  for (size_t x = 0; x < width; ++x, in += 4, out += 3) {
    const unsigned a = in[3];
    if (alpha) alpha[x] = uint8_t(a);
    for (int c = 0; c < 3; ++c) out[c] = alpha ? in[c] : uint8_t((in[c] * a + 127) / 255);
  }
}

// PIL opens 16-bit grey PNGs as 32-bit integers (mode "I"), and its convert("RGB") saturates them at 255.
void saturate_grey16(const uint8_t* in, size_t width, uint8_t* out) {
  for (size_t x = 0; x < width; ++x, in += 2, out += 3) {
    out[0] = out[1] = out[2] = uint8_t(std::min(in[0] << 8 | in[1], 255));
  }
}

// ---- PNG decoding -----------------------------------------------------------------------------------------

struct PngReader {
  ByteSource source;
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[512] = "unknown libpng error";
  png_uint_32 width = 0, height = 0;
  int channels = 0;
  bool interlaced = false, pil = false, grey16 = false, indexed = false;
  std::vector<uint8_t> row, rgb_row, full;
  std::vector<png_bytep> row_pointers;
  uint8_t* alpha = nullptr;  // the output's alpha plane, when DecodeOptions::pil keeps it
  BoxAccumulator box;

  // Converts decoded row y to RGB into rgb_row, and feeds it to the box accumulator.
  void add_row(const uint8_t* in, size_t y) {
    if (grey16) {
      saturate_grey16(in, width, rgb_row.data());
    } else {
      to_rgb(in, channels, width, rgb_row.data(), alpha ? alpha + y * width : nullptr);
    }
    box.add_row(rgb_row.data());
  }

  ~PngReader() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

[[noreturn]] void png_on_error(png_structp png, png_const_charp message) {
  auto* reader = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(reader->message, sizeof reader->message, "%s", message);
  png_longjmp(png, 1);
}

// Warnings (bad ancillary chunks, odd colour profiles) do not stop decoding and must not clutter stderr.
void png_on_warning(png_structp, png_const_charp) {}

void png_read_source(png_structp png, png_bytep out, size_t n) {
  auto& source = static_cast<PngReader*>(png_get_io_ptr(png))->source;
  if (source.file) {
    if (std::fread(out, 1, n, source.file) != n) png_error(png, "unexpected end of file (truncated?)");
    return;
  }
  if (source.size - source.pos < n) png_error(png, "unexpected end of data (truncated?)");
  std::memcpy(out, source.data + source.pos, n);
  source.pos += n;
}

bool png_read_header(PngReader* r) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  // libpng's own default limit is 1,000,000 per side; DecodeOptions::max_pixels is the limit that applies.
  png_set_user_limits(r->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_set_read_fn(r->png, r, png_read_source);
  png_read_info(r->png, r->info);
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(r->png, r->info, &r->width, &r->height, &bit_depth, &color_type, &interlace, nullptr, nullptr);
  if (r->pil) {
    // PIL's convert("RGB") looks palette entries up and ignores tRNS; it reads 16-bit samples by their high
    // byte, except 16-bit grey (see saturate_grey16).
    png_set_palette_to_rgb(r->png);
    png_set_expand_gray_1_2_4_to_8(r->png);
    r->grey16 = bit_depth == 16 && color_type == PNG_COLOR_TYPE_GRAY;
    r->indexed =
        color_type == PNG_COLOR_TYPE_PALETTE || (color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 1);
    if (r->indexed) png_set_strip_alpha(r->png);  // png_set_palette_to_rgb turns tRNS into alpha
    if (!r->grey16) {
      png_set_strip_16(r->png);
      png_set_gray_to_rgb(r->png);
    }
  } else {
    png_set_expand(r->png);  // palette -> RGB, grey below 8 bits -> 8 bits, tRNS -> alpha channel
    png_set_scale_16(r->png);
    png_set_gray_to_rgb(r->png);
  }
  r->interlaced = interlace != PNG_INTERLACE_NONE;
  if (r->interlaced) png_set_interlace_handling(r->png);
  png_read_update_info(r->png, r->info);
  r->channels = png_get_channels(r->png, r->info);
  return true;
}

bool png_read_pixels(PngReader* r) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  if (r->interlaced) {
    png_read_image(r->png, r->row_pointers.data());
    for (png_uint_32 y = 0; y < r->height && !r->box.done(); ++y) r->add_row(r->row_pointers[y], y);
    return true;
  }
  // Rows below the last whole block are never needed, so reading stops there.
  for (png_uint_32 y = 0; y < r->height && !r->box.done(); ++y) {
    png_read_row(r->png, r->row.data(), nullptr);
    r->add_row(r->row.data(), y);
  }
  return true;
}

Image decode_png(const ByteSource& source, const unsigned char* head, size_t head_size,
                 const std::string& name, const DecodeOptions& options) {
  // png_read_info reads on past IHDR up to the first IDAT, so a hostile header is refused from the raw bytes
  // first: the size error then wins over whatever follows (or does not follow) the header.
  if (head_size >= 24 && std::memcmp(head + 12, "IHDR", 4) == 0) {
    auto be32 = [&](size_t at) {
      return int64_t(head[at]) << 24 | int64_t(head[at + 1]) << 16 | int64_t(head[at + 2]) << 8 |
             head[at + 3];
    };
    check_pixel_limit(name, be32(16), be32(20), options);
  }
  PngReader r;
  r.source = source;
  r.pil = options.pil;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_on_error, png_on_warning);
  check(r.png != nullptr, name, ": cannot create a PNG reader (out of memory?)");
  r.info = png_create_info_struct(r.png);
  check(r.info != nullptr, name, ": cannot create a PNG reader (out of memory?)");
  if (!png_read_header(&r)) throw Error(str_cat(name, ": not a valid PNG: ", r.message));
  check(r.channels == 3 || r.channels == 4 || r.grey16, name, ": unsupported PNG layout (", r.channels,
        " channels)");

  const int64_t width = r.width, height = r.height;
  check_pixel_limit(name, width, height, options);
  const int64_t pixel_bytes = r.grey16 ? 2 : r.channels;
  const size_t row_bytes = size_t(width) * size_t(pixel_bytes);
  if (r.interlaced) {
    check(width * height * pixel_bytes <= kInterlacedBudgetBytes, name, ": interlaced PNG of ", width, "x",
          height, " needs ", (width * height * pixel_bytes) >> 20, " MiB to decode (more than the ",
          kInterlacedBudgetBytes >> 20, " MiB budget for interlaced images); re-save it non-interlaced");
    r.full.resize(row_bytes * size_t(height));
    r.row_pointers.resize(size_t(height));
    for (size_t y = 0; y < size_t(height); ++y) r.row_pointers[y] = r.full.data() + y * row_bytes;
  } else {
    r.row.resize(row_bytes);
  }
  r.rgb_row.resize(size_t(width) * 3);

  Image image;
  r.box.start(int(width), int(height), box_factor(width, height, options.max_side), &image);
  image.indexed = r.indexed;
  if (r.pil && r.channels == 4) {
    image.alpha.resize(size_t(width) * size_t(height));
    r.alpha = image.alpha.data();
  }
  if (!png_read_pixels(&r)) throw Error(str_cat(name, ": not a valid PNG: ", r.message));
  return image;
}

// ---- JPEG decoding ----------------------------------------------------------------------------------------

struct JpegErrorManager {
  jpeg_error_mgr pub;  // first, so libjpeg's pointer to it is also a pointer to the whole struct
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// libjpeg only warns on a truncated file and fills the rest with grey; a silently grey image is worse than an
// error, so that warning is fatal. Other warnings (e.g. stray bytes before a marker) are common in files that
// decode fine and are ignored.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

struct JpegReader {
  ByteSource source;
  jpeg_decompress_struct cinfo{};
  JpegErrorManager err{};
  bool created = false;
  std::vector<uint8_t> row, rgb_row;
  BoxAccumulator box;

  ~JpegReader() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

bool jpeg_read_header_c(JpegReader* r) {
  r->cinfo.err = jpeg_std_error(&r->err.pub);
  r->err.pub.error_exit = jpeg_on_error;
  r->err.pub.emit_message = jpeg_on_message;
  if (setjmp(r->err.jump)) return false;
  jpeg_create_decompress(&r->cinfo);
  r->created = true;
  if (r->source.file) {
    jpeg_stdio_src(&r->cinfo, r->source.file);
  } else {
    jpeg_mem_src(&r->cinfo, const_cast<unsigned char*>(r->source.data),
                 static_cast<unsigned long>(r->source.size));
  }
  jpeg_read_header(&r->cinfo, TRUE);
  return true;
}

bool jpeg_start_c(JpegReader* r) {
  if (setjmp(r->err.jump)) return false;
  jpeg_start_decompress(&r->cinfo);
  return true;
}

void cmyk_to_rgb(const uint8_t* in, size_t width, bool inverted, uint8_t* out) {
  for (size_t x = 0; x < width; ++x, in += 4, out += 3) {
    // Adobe writes CMYK inverted (0 = full ink), which is what nearly all CMYK JPEGs in the wild are.
    const unsigned k = inverted ? in[3] : 255u - in[3];
    for (int c = 0; c < 3; ++c) out[c] = uint8_t(((inverted ? in[c] : 255u - in[c]) * k + 127) / 255);
  }
}

bool jpeg_read_rows_c(JpegReader* r) {
  if (setjmp(r->err.jump)) return false;
  const bool cmyk = r->cinfo.out_color_space == JCS_CMYK;
  while (r->cinfo.output_scanline < r->cinfo.output_height && !r->box.done()) {
    JSAMPROW row = r->row.data();
    jpeg_read_scanlines(&r->cinfo, &row, 1);
    if (cmyk) {
      cmyk_to_rgb(r->row.data(), r->cinfo.output_width, r->cinfo.saw_Adobe_marker, r->rgb_row.data());
      r->box.add_row(r->rgb_row.data());
    } else {
      r->box.add_row(r->row.data());
    }
  }
  return true;
}

Image decode_jpeg(const ByteSource& source, const std::string& name, const DecodeOptions& options) {
  JpegReader r;
  r.source = source;
  if (!jpeg_read_header_c(&r)) throw Error(str_cat(name, ": not a valid JPEG: ", r.err.message));
  const int64_t width = r.cinfo.image_width, height = r.cinfo.image_height;
  check_pixel_limit(name, width, height, options);

  const bool cmyk = r.cinfo.jpeg_color_space == JCS_CMYK || r.cinfo.jpeg_color_space == JCS_YCCK;
  r.cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  // Let the IDCT do part of the downscale (1/2, 1/4, 1/8: far cheaper than decoding full size) and the box
  // filter the rest. libjpeg rounds scaled sides up; the denominator chosen is the one whose final shorter
  // side is smallest, the largest denominator on ties.
  if (options.max_side > 0) {
    const int64_t shorter = std::min(width, height);
    int64_t best_side = INT64_MAX;
    for (unsigned denom : {8u, 4u, 2u, 1u}) {
      const int64_t scaled = (shorter + denom - 1) / denom;
      if (scaled < options.max_side) continue;
      const int64_t side = scaled / box_factor(scaled, scaled, options.max_side);
      if (side < best_side) {
        best_side = side;
        r.cinfo.scale_num = 1;
        r.cinfo.scale_denom = denom;
      }
    }
  }
  if (!jpeg_start_c(&r)) throw Error(str_cat(name, ": not a valid JPEG: ", r.err.message));
  const int64_t out_width = r.cinfo.output_width, out_height = r.cinfo.output_height;
  r.row.resize(size_t(out_width) * size_t(r.cinfo.output_components));
  r.rgb_row.resize(size_t(out_width) * 3);

  Image image;
  r.box.start(int(out_width), int(out_height), box_factor(out_width, out_height, options.max_side), &image);
  if (!jpeg_read_rows_c(&r)) throw Error(str_cat(name, ": not a valid JPEG: ", r.err.message));
  return image;
}

// ---- Format detection -------------------------------------------------------------------------------------

enum class Format { kPng, kJpeg };

Format detect_format(const unsigned char* head, size_t n, const std::string& name) {
  static const unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  check(n > 0, name, ": empty file (expected a PNG or JPEG image)");
  if (n >= 8 && std::memcmp(head, kPngSignature, 8) == 0) return Format::kPng;
  if (n >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) return Format::kJpeg;
  auto starts_with = [&](const char* magic) {
    return n >= std::strlen(magic) && std::memcmp(head, magic, std::strlen(magic)) == 0;
  };
  const char* other = starts_with("GIF8")   ? "GIF"
                      : starts_with("RIFF") ? "RIFF (WebP?)"
                      : starts_with("BM")   ? "BMP"
                                            : nullptr;
  check(other == nullptr, name, ": not an image we decode: looks like ", other ? other : "",
        "; convert it to PNG or JPEG");
  throw Error(str_cat(name, ": not an image: expected PNG or JPEG signature"));
}

Image decode_source(const ByteSource& source, const unsigned char* head, size_t head_size,
                    const std::string& name, const DecodeOptions& options) {
  check(options.max_pixels > 0, name, ": DecodeOptions::max_pixels must be > 0 (got ", options.max_pixels,
        ")");
  check(options.max_side >= 0, name, ": DecodeOptions::max_side must be >= 0 (got ", options.max_side, ")");
  check(!options.pil || options.max_side == 0, name,
        ": DecodeOptions::pil decodes at full size, as PIL does, ", "so max_side must be 0 (got ",
        options.max_side, ")");
  switch (detect_format(head, head_size, name)) {
    case Format::kPng:
      return decode_png(source, head, head_size, name, options);
    case Format::kJpeg:
      return decode_jpeg(source, name, options);
  }
  throw Error(str_cat(name, ": unreachable image format"));
}

// ---- PNG encoding -----------------------------------------------------------------------------------------

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::string out;
  char message[512] = "unknown libpng error";

  ~PngWriter() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

[[noreturn]] void png_on_write_error(png_structp png, png_const_charp message) {
  auto* writer = static_cast<PngWriter*>(png_get_error_ptr(png));
  std::snprintf(writer->message, sizeof writer->message, "%s", message);
  png_longjmp(png, 1);
}

void png_write_sink(png_structp png, png_bytep data, size_t n) {
  bool ok = true;
  try {
    static_cast<PngWriter*>(png_get_io_ptr(png))->out.append(reinterpret_cast<const char*>(data), n);
  } catch (const std::bad_alloc&) {
    ok = false;
  }
  if (!ok) png_error(png, "out of memory");
}

void png_flush_sink(png_structp) {}

bool png_write_c(PngWriter* w, const Image* image, int compression_level) {
  if (setjmp(png_jmpbuf(w->png))) return false;
  png_set_write_fn(w->png, w, png_write_sink, png_flush_sink);
  png_set_compression_level(w->png, compression_level);
  png_set_IHDR(w->png, w->info, png_uint_32(image->width), png_uint_32(image->height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w->png, w->info);
  const size_t stride = size_t(image->width) * 3;
  for (int y = 0; y < image->height; ++y) {
    png_write_row(w->png, const_cast<png_bytep>(image->rgb.data() + size_t(y) * stride));
  }
  png_write_end(w->png, nullptr);
  return true;
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& name_for_errors,
                   const DecodeOptions& options) {
  ByteSource source;
  source.data = reinterpret_cast<const unsigned char*>(bytes.data());
  source.size = bytes.size();
  return decode_source(source, source.data, source.size, name_for_errors, options);
}

Image read_image(const std::filesystem::path& path, const DecodeOptions& options) {
  const std::string name = path.string();
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  check(file != nullptr, "cannot open ", name, ": ", std::strerror(errno));
  unsigned char head[24];  // the PNG signature and IHDR up to width and height
  const size_t head_size = std::fread(head, 1, sizeof head, file.get());
  check(!std::ferror(file.get()), "cannot read ", name, ": ", std::strerror(errno));
  check(std::fseek(file.get(), 0, SEEK_SET) == 0, "cannot seek in ", name, ": ", std::strerror(errno));
  ByteSource source;
  source.file = file.get();
  return decode_source(source, head, head_size, name, options);
}

std::string encode_png(const Image& image, int compression_level) {
  check(image.width > 0 && image.height > 0, "encode_png: empty image (", image.width, "x", image.height,
        ")");
  check(image.rgb.size() == size_t(image.width) * size_t(image.height) * 3, "encode_png: image is ",
        image.width, "x", image.height, " but holds ", image.rgb.size(),
        " bytes (expected width * height * 3)");
  check(compression_level >= 0 && compression_level <= 9,
        "encode_png: compression_level must be in [0, 9] (got ", compression_level, ")");
  PngWriter w;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, png_on_write_error, png_on_warning);
  check(w.png != nullptr, "encode_png: cannot create a PNG writer (out of memory?)");
  w.info = png_create_info_struct(w.png);
  check(w.info != nullptr, "encode_png: cannot create a PNG writer (out of memory?)");
  if (!png_write_c(&w, &image, compression_level)) throw Error(str_cat("encode_png: ", w.message));
  return std::move(w.out);
}

void write_png(const std::filesystem::path& path, const Image& image) {
  write_file_atomic(path, encode_png(image));
}

}  // namespace mmlearn::data
