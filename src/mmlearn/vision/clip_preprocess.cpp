#include "mmlearn/vision/clip_preprocess.h"

#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"

namespace mmlearn::vision {
namespace {
using json = nlohmann::json;

// torchvision's _compute_resized_output_size and HF's get_resize_output_image_size: the shorter side becomes
// `shortest`, the longer int(shortest * long / short), a correctly rounded division truncated.
std::pair<int, int> shortest_edge_size(int width, int height, int shortest) {
  const bool portrait = width <= height;
  const int64_t short_side = portrait ? width : height, long_side = portrait ? height : width;
  const int64_t scaled = int64_t(double(shortest * long_side) / double(short_side));
  check(scaled <= INT_MAX, "preprocess: resizing ", width, "x", height, " to a shorter side of ", shortest,
        " makes the longer side ", scaled, " pixels, too many");
  return portrait ? std::pair{shortest, int(scaled)} : std::pair{int(scaled), shortest};
}

void check_preprocess(const ImagePreprocess& p) {
  check(p.resize_shortest >= 0 && p.resize_width >= 0 && p.resize_height >= 0,
        "preprocess: resize sizes must not be negative (got shortest ", p.resize_shortest, ", ",
        p.resize_width, "x", p.resize_height, ")");
  check(p.resize_shortest > 0 || (p.resize_width > 0) == (p.resize_height > 0),
        "preprocess: resize_width and resize_height must both be set or both be 0 (got ", p.resize_width, "x",
        p.resize_height, ")");
  check(p.crop_width >= 0 && p.crop_height >= 0 && (p.crop_width > 0) == (p.crop_height > 0),
        "preprocess: crop size must be positive, or 0 x 0 for no crop (got ", p.crop_width, "x",
        p.crop_height, ")");
  check(std::isfinite(p.rescale_factor) && p.rescale_factor > 0,
        "preprocess: rescale_factor must be positive (got ", p.rescale_factor, ")");
  for (int c = 0; c < 3; ++c) {
    check(std::isfinite(p.mean[c]) && std::isfinite(p.std_dev[c]) && p.std_dev[c] != 0,
          "preprocess: channel ", c, " needs a finite mean and a finite, non-zero std_dev (got ", p.mean[c],
          ", ", p.std_dev[c], ")");
  }
}

// ---- preprocessor_config.json -----------------------------------------------------------------------------

[[noreturn]] void bad_field(const std::string& where, const char* key, const json& value,
                            const char* expected) {
  throw Error(str_cat(where, ": field \"", key, "\": expected ", expected, ", got ", value.dump()));
}

bool bool_field(const json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_boolean()) bad_field(where, key, j[key], "true or false");
  return j[key].get<bool>();
}

int positive_int(const json& value, const char* key, const std::string& where) {
  if (!value.is_number_integer() || value.get<int64_t>() <= 0 || value.get<int64_t>() > INT_MAX) {
    bad_field(where, key, value, "a positive integer");
  }
  return value.get<int>();
}

// {"height": h, "width": w} -> (w, h).
std::pair<int, int> height_width(const json& value, const char* key, const std::string& where) {
  return {positive_int(value["width"], key, where), positive_int(value["height"], key, where)};
}

std::array<float, 3> channel_values(const json& value, const char* key, const std::string& where) {
  auto number = [&](const json& v) {
    if (!v.is_number() || !std::isfinite(v.get<double>())) bad_field(where, key, value, "3 numbers or 1");
    return float(v.get<double>());
  };
  if (value.is_number()) return {number(value), number(value), number(value)};
  if (!value.is_array() || value.size() != 3) bad_field(where, key, value, "3 numbers or 1");
  return {number(value[0]), number(value[1]), number(value[2])};
}

}  // namespace

PixelTensor preprocess(data::Image image, const ImagePreprocess& p) {
  check_preprocess(p);
  check(image.width > 0 && image.height > 0, "preprocess: empty image (", image.width, "x", image.height,
        ")");
  if (p.family == ImagePreprocess::Family::hf) {  // convert("RGB") comes first: no alpha, no palette
    image.alpha = {};
    image.indexed = false;
  }
  auto [width, height] = p.resize_shortest > 0
                             ? shortest_edge_size(image.width, image.height, p.resize_shortest)
                         : p.resize_width > 0 ? std::pair{p.resize_width, p.resize_height}
                                              : std::pair{image.width, image.height};
  const CropRounding rounding =
      p.family == ImagePreprocess::Family::openai ? CropRounding::torchvision : CropRounding::hf;
  const Rect window =
      p.crop_width > 0 ? Rect{center_crop_start(width, p.crop_width, rounding),
                              center_crop_start(height, p.crop_height, rounding), p.crop_width, p.crop_height}
                       : Rect{0, 0, width, height};
  // For Family::openai, convert("RGB") comes here: the alpha resize_window returns is not read.
  const data::Image pixels = resize_window(image, width, height, p.filter, window);

  PixelTensor out{pixels.width, pixels.height, std::vector<float>(pixels.rgb.size())};
  const size_t plane = size_t(out.width) * size_t(out.height);
  for (size_t c = 0; c < 3; ++c) {
    float* dst = out.chw.data() + c * plane;
    for (size_t i = 0; i < plane; ++i) {
      const uint8_t v = pixels.rgb[i * 3 + c];
      const float x = p.family == ImagePreprocess::Family::openai ? float(v) / 255.0f
                                                                  : float(double(v) * p.rescale_factor);
      dst[i] = (x - p.mean[c]) / p.std_dev[c];
    }
  }
  return out;
}

ImagePreprocess read_hf_preprocessor_config(const std::filesystem::path& path) {
  const std::string where = path.string();
  const json j = read_json_file(path);
  check(j.is_object(), where, ": expected a JSON object (a preprocessor_config.json)");
  // Other processors (and the Fast ones, which resize with torch) give other pixels.
  bool blip = false;
  for (const char* key : {"image_processor_type", "feature_extractor_type"}) {
    if (!j.contains(key)) continue;
    blip = blip || j[key] == "BlipImageProcessor";
    if (j[key] != "CLIPImageProcessor" && j[key] != "CLIPFeatureExtractor" &&
        j[key] != "BlipImageProcessor") {
      bad_field(where, key, j[key],
                "\"CLIPImageProcessor\" or \"BlipImageProcessor\" (the processors reproduced)");
    }
  }

  ImagePreprocess p;  // CLIPImageProcessor's defaults are OpenAI's
  p.family = ImagePreprocess::Family::hf;
  if (blip) {  // BlipImageProcessor's: 384 x 384, no crop (it has none); an integer size is a square
    p.resize_shortest = 0;
    p.resize_width = p.resize_height = 384;
    p.crop_width = p.crop_height = 0;
  }
  if (!bool_field(j, "do_resize", true, where)) {
    p.resize_shortest = 0;
  } else if (j.contains("size")) {
    const json& size = j["size"];
    if (size.is_object() && size.contains("shortest_edge")) {
      p.resize_shortest = positive_int(size["shortest_edge"], "size", where);
    } else if (size.is_object() && size.contains("height") && size.contains("width")) {
      p.resize_shortest = 0;
      std::tie(p.resize_width, p.resize_height) = height_width(size, "size", where);
    } else if (size.is_number()) {
      const int n = positive_int(size, "size", where);
      if (blip)
        p.resize_width = p.resize_height = n;
      else
        p.resize_shortest = n;
    } else {
      bad_field(where, "size", size, "an integer, {\"shortest_edge\": n} or {\"height\": h, \"width\": w}");
    }
  }
  if (j.contains("resample")) {
    const json& resample = j["resample"];
    if (!resample.is_number_integer() || resample.get<int64_t>() < 0 || resample.get<int64_t>() > 5) {
      bad_field(where, "resample", resample, "a PIL filter number from 0 to 5 (3 = bicubic)");
    }
    p.filter = Filter(resample.get<int>());
  }
  if (blip) {
    // BlipImageProcessor has no centre crop.
  } else if (!bool_field(j, "do_center_crop", true, where)) {
    p.crop_width = p.crop_height = 0;
  } else if (j.contains("crop_size")) {
    const json& crop = j["crop_size"];
    if (crop.is_object() && crop.contains("height") && crop.contains("width")) {
      std::tie(p.crop_width, p.crop_height) = height_width(crop, "crop_size", where);
    } else if (crop.is_number()) {
      p.crop_width = p.crop_height = positive_int(crop, "crop_size", where);
    } else {
      bad_field(where, "crop_size", crop, "an integer or {\"height\": h, \"width\": w}");
    }
  }
  if (!bool_field(j, "do_rescale", true, where)) {
    p.rescale_factor = 1.0;
  } else if (j.contains("rescale_factor")) {
    const json& factor = j["rescale_factor"];
    if (!factor.is_number() || !(factor.get<double>() > 0) || !std::isfinite(factor.get<double>())) {
      bad_field(where, "rescale_factor", factor, "a positive number");
    }
    p.rescale_factor = factor.get<double>();
  }
  if (!bool_field(j, "do_normalize", true, where)) {
    p.mean = {0, 0, 0};
    p.std_dev = {1, 1, 1};
  } else {
    if (j.contains("image_mean")) p.mean = channel_values(j["image_mean"], "image_mean", where);
    if (j.contains("image_std")) p.std_dev = channel_values(j["image_std"], "image_std", where);
    for (float s : p.std_dev) {
      if (s == 0) bad_field(where, "image_std", j["image_std"], "non-zero numbers");
    }
  }
  return p;
}

}  // namespace mmlearn::vision
