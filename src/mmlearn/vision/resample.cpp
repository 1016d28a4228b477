#include "mmlearn/vision/resample.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <vector>

#include "mmlearn/core/error.h"

// Bit-exactness rests on evaluating Pillow's double expressions in the same order with the same libm; each
// expression below keeps Pillow's operand order. (A build that fuses multiply-adds, e.g. -ffp-contract=fast
// on a target with FMA, could move a weight by one ulp; x86-64 without -march has no FMA.)

namespace mmlearn::vision {
namespace {

// ---- Pillow's filters (Resample.c), each with its support radius at scale 1 -------------------------------

struct Kernel {
  double (*weight)(double);
  double support;
};

double box_weight(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

double bilinear_weight(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_weight(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * std::numbers::pi;
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));  // float constants, as in Pillow
}

double bicubic_weight(double x) {  // Keys' cubic with a = -0.5
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * std::numbers::pi;
  return std::sin(x) / x;
}

double lanczos_weight(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0; }

Kernel kernel_of(Filter filter) {
  switch (filter) {
    case Filter::box:
      return {box_weight, 0.5};
    case Filter::bilinear:
      return {bilinear_weight, 1.0};
    case Filter::hamming:
      return {hamming_weight, 1.0};
    case Filter::bicubic:
      return {bicubic_weight, 2.0};
    case Filter::lanczos:
      return {lanczos_weight, 3.0};
    case Filter::nearest:
      break;
  }
  throw Error(str_cat("resize: filter ", int(filter), " has no convolution kernel"));
}

// ---- Convolution weights: Pillow's precompute_coeffs and normalize_coeffs_8bpc ----------------------------

// 8 bits of result, 2 of headroom for filters whose lobes sum above 1 or below 0.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = int32_t{1} << (kPrecisionBits - 1);

uint8_t clip8(int32_t sum) { return uint8_t(std::clamp(sum >> kPrecisionBits, 0, 255)); }

// Output pixel i of an axis reads count[i] inputs from start[i], weighted by weight[i * ksize ...].
struct Taps {
  int ksize = 0;
  std::vector<int> start, count;
  std::vector<int32_t> weight;
};

// The taps of outputs [first, last) of an axis resized from in_size to out_size pixels.
Taps taps(int in_size, int out_size, int first, int last, const Kernel& kernel) {
  // Pillow takes the source box as floats, so in_size passes through float (exact below 2^24).
  const double scale = double(float(in_size)) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = kernel.support * filterscale;
  const double inverse = 1.0 / filterscale;
  Taps t;
  t.ksize = int(std::ceil(support)) * 2 + 1;
  const size_t n = size_t(last - first);
  t.start.resize(n);
  t.count.resize(n);
  t.weight.assign(n * size_t(t.ksize), 0);
  std::vector<double> w(size_t(t.ksize));
  for (int i = first; i < last; ++i) {
    const double center = (i + 0.5) * scale;
    const int lo = std::max(0, int(center - support + 0.5));
    const int count = std::min(in_size, int(center + support + 0.5)) - lo;
    double sum = 0.0;
    for (int x = 0; x < count; ++x) sum += w[size_t(x)] = kernel.weight((x + lo - center + 0.5) * inverse);
    int32_t* fixed = t.weight.data() + size_t(i - first) * size_t(t.ksize);
    for (int x = 0; x < count; ++x) {
      const double v = sum != 0.0 ? w[size_t(x)] / sum : w[size_t(x)];
      fixed[x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    t.start[size_t(i - first)] = lo;
    t.count[size_t(i - first)] = count;
  }
  return t;
}

// ---- Pixels -----------------------------------------------------------------------------------------------

void check_image(const data::Image& image) {
  check(image.width > 0 && image.height > 0, "resize: empty image (", image.width, "x", image.height, ")");
  const size_t pixels = size_t(image.width) * size_t(image.height);
  check(image.rgb.size() == pixels * 3, "resize: image is ", image.width, "x", image.height, " but holds ",
        image.rgb.size(), " RGB bytes (expected width * height * 3)");
  check(image.alpha.empty() || image.alpha.size() == pixels, "resize: image is ", image.width, "x",
        image.height, " but holds ", image.alpha.size(), " alpha bytes (expected none or width * height)");
}

// PIL's MULDIV255: round(a * b / 255) without a division.
uint8_t muldiv255(unsigned a, unsigned b) {
  const unsigned t = a * b + 128;
  return uint8_t(((t >> 8) + t) >> 8);
}

// Row y of `image` as RGB or, with alpha, premultiplied RGBA (PIL's convert("RGBa"), done by Image.resize).
const uint8_t* source_row(const data::Image& image, int y, std::vector<uint8_t>& buffer) {
  const uint8_t* rgb = image.rgb.data() + size_t(y) * size_t(image.width) * 3;
  if (image.alpha.empty()) return rgb;
  const uint8_t* alpha = image.alpha.data() + size_t(y) * size_t(image.width);
  buffer.resize(size_t(image.width) * 4);
  for (size_t x = 0; x < size_t(image.width); ++x) {
    for (size_t c = 0; c < 3; ++c) buffer[x * 4 + c] = muldiv255(rgb[x * 3 + c], alpha[x]);
    buffer[x * 4 + 3] = alpha[x];
  }
  return buffer.data();
}

// Writes pixel (x, y) of the resized image (3 or 4 channels) into `out`, which holds `window` of it.
void put(data::Image& out, const Rect& window, int x, int y, const uint8_t* pixel) {
  const size_t at = size_t(y - window.y) * size_t(window.width) + size_t(x - window.x);
  std::memcpy(out.rgb.data() + at * 3, pixel, 3);
  if (!out.alpha.empty()) out.alpha[at] = pixel[3];
}

void get(const data::Image& image, int x, int y, uint8_t* pixel) {
  const size_t at = size_t(y) * size_t(image.width) + size_t(x);
  std::memcpy(pixel, image.rgb.data() + at * 3, 3);
  if (!image.alpha.empty()) pixel[3] = image.alpha[at];
}

// Pillow's ImagingScaleAffine: source coordinates accumulate by repeated addition from the first pixel's
// centre, and are truncated; positions outside the source stay black.
std::vector<int> nearest_sources(int in_size, int out_size, int first, int last) {
  const double step = double(float(in_size)) / out_size;
  std::vector<int> sources(size_t(last - first), -1);
  double position = step * 0.5;
  for (int i = 0; i < last; ++i, position += step) {
    const int source = position < 0.0 ? -1 : int(position);
    if (i >= first && source < in_size) sources[size_t(i - first)] = source;
  }
  return sources;
}

}  // namespace

data::Image resize_window(const data::Image& image, int width, int height, Filter filter, Rect window) {
  check_image(image);
  check(width > 0 && height > 0, "resize: output size must be positive (got ", width, "x", height, ")");
  check(window.width > 0 && window.height > 0, "resize: window must not be empty (got ", window.width, "x",
        window.height, ")");
  const bool has_alpha = !image.alpha.empty();
  const size_t window_pixels = size_t(window.width) * size_t(window.height);
  data::Image out{window.width, window.height, std::vector<uint8_t>(window_pixels * 3),
                  std::vector<uint8_t>(has_alpha ? window_pixels : 0), image.indexed};
  // The part of the window inside the resized image.
  const int x0 = std::max(window.x, 0), y0 = std::max(window.y, 0);
  const int x1 = int(std::min<int64_t>(int64_t{window.x} + window.width, width));
  const int y1 = int(std::min<int64_t>(int64_t{window.y} + window.height, height));
  if (x0 >= x1 || y0 >= y1) return out;
  uint8_t pixel[4] = {};

  if (width == image.width && height == image.height) {  // Image.resize returns a copy
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) {
        get(image, x, y, pixel);
        put(out, window, x, y, pixel);
      }
    }
    return out;
  }

  if (image.indexed || filter == Filter::nearest) {  // Image.resize forces NEAREST on modes "P" and "1"
    const std::vector<int> xs = nearest_sources(image.width, width, x0, x1);
    const std::vector<int> ys = nearest_sources(image.height, height, y0, y1);
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) {
        const int sx = xs[size_t(x - x0)], sy = ys[size_t(y - y0)];
        if (sx < 0 || sy < 0) continue;
        get(image, sx, sy, pixel);
        put(out, window, x, y, pixel);
      }
    }
    return out;
  }

  // Pillow's two passes, over the window only: horizontal into `rows` (the source rows the vertical pass
  // reads, window columns only), then vertical. Each pass rounds and clips to 8 bits, as Pillow's do; an axis
  // whose size does not change is not filtered.
  const Kernel kernel = kernel_of(filter);
  const bool horizontal = width != image.width, vertical = height != image.height;
  const Taps tx = horizontal ? taps(image.width, width, x0, x1, kernel) : Taps{};
  const Taps ty = vertical ? taps(image.height, height, y0, y1, kernel) : Taps{};
  const int row0 = vertical ? ty.start.front() : y0;
  const int row1 = vertical ? ty.start.back() + ty.count.back() : y1;
  const size_t channels = has_alpha ? 4 : 3, columns = size_t(x1 - x0), stride = columns * channels;
  std::vector<uint8_t> rows(size_t(row1 - row0) * stride), buffer;
  for (int y = row0; y < row1; ++y) {
    const uint8_t* in = source_row(image, y, buffer);
    uint8_t* dst = rows.data() + size_t(y - row0) * stride;
    if (!horizontal) {
      std::memcpy(dst, in + size_t(x0) * channels, stride);
      continue;
    }
    for (size_t i = 0; i < columns; ++i) {
      const int32_t* k = tx.weight.data() + i * size_t(tx.ksize);
      const uint8_t* src = in + size_t(tx.start[i]) * channels;
      int32_t sum[4] = {kHalf, kHalf, kHalf, kHalf};
      for (int j = 0; j < tx.count[i]; ++j) {
        for (size_t c = 0; c < channels; ++c) sum[c] += src[size_t(j) * channels + c] * k[j];
      }
      for (size_t c = 0; c < channels; ++c) dst[i * channels + c] = clip8(sum[c]);
    }
  }
  for (int y = y0; y < y1; ++y) {
    const size_t i = size_t(y - y0);
    for (size_t col = 0; col < columns; ++col) {
      if (!vertical) {
        std::memcpy(pixel, rows.data() + i * stride + col * channels, channels);
      } else {
        const int32_t* k = ty.weight.data() + i * size_t(ty.ksize);
        const uint8_t* src = rows.data() + size_t(ty.start[i] - row0) * stride + col * channels;
        for (size_t c = 0; c < channels; ++c) {
          int32_t sum = kHalf;
          for (int j = 0; j < ty.count[i]; ++j) sum += src[size_t(j) * stride + c] * k[j];
          pixel[c] = clip8(sum);
        }
      }
      // Back from premultiplied alpha: PIL's convert("RGBA") from "RGBa" (rgba2rgbA).
      const unsigned a = pixel[3];
      if (has_alpha && a != 0 && a != 255) {
        for (int c = 0; c < 3; ++c) pixel[c] = uint8_t(std::min(255u, 255u * pixel[c] / a));
      }
      put(out, window, x0 + int(col), y, pixel);
    }
  }
  return out;
}

data::Image resize(const data::Image& image, int width, int height, Filter filter) {
  return resize_window(image, width, height, filter, {0, 0, width, height});
}

int center_crop_start(int size, int crop, CropRounding rounding) {
  if (crop > size) {
    const int pad = crop - size;
    return -(rounding == CropRounding::torchvision ? pad / 2 : (pad + 1) / 2);
  }
  const int excess = size - crop, half = excess / 2;
  const bool round_up = rounding == CropRounding::torchvision && excess % 2 == 1 && half % 2 == 1;
  return round_up ? half + 1 : half;
}

data::Image center_crop(const data::Image& image, int width, int height, CropRounding rounding) {
  const Rect window{center_crop_start(image.width, width, rounding),
                    center_crop_start(image.height, height, rounding), width, height};
  return resize_window(image, image.width, image.height, Filter::nearest, window);
}

}  // namespace mmlearn::vision
