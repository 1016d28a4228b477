// CLIP preprocessing against PIL (tests/fixtures/pil_preprocess_reference.py): decoding with
// DecodeOptions::pil, PIL's Image.resize, and the whole OpenAI (torchvision) and Hugging Face pipelines; then
// centre-crop placement, windows, preprocessor_config.json parsing and errors, which need no Python.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/vision/clip_preprocess.h"
#include "mmlearn/vision/resample.h"

namespace mmlearn::vision {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// A raw little-endian array the reference script wrote.
template <typename T>
std::vector<T> read_raw(const fs::path& path) {
  const std::string bytes = read_file(path);
  std::vector<T> values(bytes.size() / sizeof(T));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

int max_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return 256;
  int worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(int(a[i]) - int(b[i])));
  return worst;
}

using test::error_of;

// Pixels that differ everywhere, so a misplaced tap or offset shows.
data::Image noise_image(int width, int height, bool alpha = false) {
  data::Image image{width, height, std::vector<uint8_t>(size_t(width) * height * 3)};
  uint32_t state = 12345;
  auto next = [&] { return uint8_t((state = state * 1664525u + 1013904223u) >> 24); };
  for (uint8_t& v : image.rgb) v = next();
  if (alpha) {
    image.alpha.resize(size_t(width) * height);
    for (uint8_t& v : image.alpha) v = next();
  }
  return image;
}

// The reference script runs once per test process; ctest runs tests as separate, possibly parallel,
// processes, hence a folder per process.
class PilReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / str_cat("mmlearn_pil_reference_", ::getpid());
    const fs::path script = test::source_dir() / "tests" / "fixtures" / "pil_preprocess_reference.py";
    status_ = std::system(str_cat("/usr/bin/python3 '", script.string(), "' '", dir_.string(), "'").c_str());
    if (status_ == 0) manifest_ = json::parse(read_file(dir_ / "manifest.json"));
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  void SetUp() override {
    ASSERT_EQ(status_, 0) << "tests/fixtures/pil_preprocess_reference.py failed: it needs /usr/bin/python3 "
                             "with PIL and numpy (Debian: python3-pil python3-numpy)";
  }
  static data::Image decode(const std::string& name) { return data::read_image(dir_ / name, {.pil = true}); }

  static inline fs::path dir_;
  static inline int status_ = -1;
  static inline json manifest_;
};

TEST_F(PilReference, DecodeGivesPilPixels) {
  ASSERT_EQ(manifest_["decode"].size(), 11u);
  for (const json& c : manifest_["decode"]) {
    SCOPED_TRACE(c["image"].get<std::string>() + " (PIL mode " + c["mode"].get<std::string>() + ")");
    const data::Image image = decode(c["image"]);
    EXPECT_EQ(max_abs_diff(image.rgb, read_raw<uint8_t>(dir_ / c["rgb"])), 0);
    if (c["alpha"].is_null()) {
      EXPECT_TRUE(image.alpha.empty());
    } else {
      EXPECT_EQ(image.alpha, read_raw<uint8_t>(dir_ / c["alpha"]));
    }
    EXPECT_EQ(image.indexed, c["indexed"].get<bool>());
  }
}

TEST_F(PilReference, ResizeIsBitExact) {
  ASSERT_FALSE(manifest_["resize"].empty());
  int worst = 0;
  for (const json& c : manifest_["resize"]) {
    SCOPED_TRACE(str_cat(c["image"].get<std::string>(), " -> ", c["width"], "x", c["height"], " filter ",
                         c["filter"]));
    const data::Image out =
        resize(decode(c["image"]), c["width"], c["height"], Filter(c["filter"].get<int>()));
    ASSERT_EQ(out.width, c["width"].get<int>());
    ASSERT_EQ(out.height, c["height"].get<int>());
    const int diff = max_abs_diff(out.rgb, read_raw<uint8_t>(dir_ / c["rgb"]));
    EXPECT_EQ(diff, 0);
    worst = std::max(worst, diff);
    if (!c["alpha"].is_null()) EXPECT_EQ(out.alpha, read_raw<uint8_t>(dir_ / c["alpha"]));
  }
  RecordProperty("max_abs_diff", worst);
  std::cout << "resize vs PIL: " << manifest_["resize"].size() << " cases, max |diff| " << worst << "\n";
}

TEST_F(PilReference, PreprocessMatchesOpenAiAndHuggingFace) {
  ASSERT_FALSE(manifest_["preprocess"].empty());
  double worst_levels = 0;
  size_t values = 0, inexact = 0;
  for (const json& c : manifest_["preprocess"]) {
    const std::string family = c["family"];
    SCOPED_TRACE(str_cat(c["image"].get<std::string>(), " ", family, " ", c.value("config", c.dump())));
    ImagePreprocess config;
    if (family == "hf") {
      config = read_hf_preprocessor_config(dir_ / c["config"]);
    } else {
      config.resize_shortest = c["resize"];
      config.crop_width = c["crop_width"];
      config.crop_height = c["crop_height"];
    }
    const PixelTensor x = preprocess(decode(c["image"]), config);
    ASSERT_EQ(x.width, c["width"].get<int>());
    ASSERT_EQ(x.height, c["height"].get<int>());
    const std::vector<float> expected = read_raw<float>(dir_ / c["expected"]);
    ASSERT_EQ(x.chw.size(), expected.size());
    const size_t plane = x.chw.size() / 3;
    for (size_t i = 0; i < expected.size(); ++i) {
      const double levels = std::abs(double(x.chw[i]) - expected[i]) / c["level"][i / plane].get<double>();
      worst_levels = std::max(worst_levels, levels);
      inexact += x.chw[i] != expected[i];
    }
    values += expected.size();
  }
  EXPECT_EQ(inexact, 0u) << "largest difference: " << worst_levels << " 8-bit levels";
  RecordProperty("max_levels", std::to_string(worst_levels));
  std::cout << "preprocess vs reference: " << manifest_["preprocess"].size() << " cases, " << values
            << " values, " << inexact << " inexact, max |diff| " << worst_levels << " 8-bit levels\n";
}

TEST(CenterCrop, StartFollowsEachLibrarysRounding) {
  // Larger image: torchvision rounds (size - crop) / 2 half to even, HF floors.
  const std::tuple<int, int, int> cases[] = {{0, 0, 0}, {1, 0, 0}, {2, 1, 1},
                                             {3, 2, 1}, {5, 2, 2}, {7, 4, 3}};
  for (auto [excess, tv, hf] : cases) {
    EXPECT_EQ(center_crop_start(10 + excess, 10, CropRounding::torchvision), tv) << excess;
    EXPECT_EQ(center_crop_start(10 + excess, 10, CropRounding::hf), hf) << excess;
  }
  // Smaller image: torchvision pads floor((crop - size) / 2) before it, HF the ceiling.
  EXPECT_EQ(center_crop_start(7, 10, CropRounding::torchvision), -1);
  EXPECT_EQ(center_crop_start(7, 10, CropRounding::hf), -2);
  EXPECT_EQ(center_crop_start(6, 10, CropRounding::torchvision), -2);
  EXPECT_EQ(center_crop_start(6, 10, CropRounding::hf), -2);
}

TEST(CenterCrop, CropsAndPadsWithBlack) {
  const data::Image image = noise_image(5, 3, /*alpha=*/true);
  // 5 -> 2 columns from column 2 (1.5 rounds to 2) for torchvision; 3 -> 6 rows, one black row above.
  const data::Image tv = center_crop(image, 2, 6, CropRounding::torchvision);
  ASSERT_EQ(tv.width, 2);
  ASSERT_EQ(tv.height, 6);
  ASSERT_EQ(tv.alpha.size(), 12u);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 2; ++x) {
      const int sy = y - 1, sx = x + 2;
      const bool inside = sy >= 0 && sy < 3;
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(tv.rgb[size_t(y * 2 + x) * 3 + c], inside ? image.rgb[size_t(sy * 5 + sx) * 3 + c] : 0);
      }
      EXPECT_EQ(tv.alpha[size_t(y * 2 + x)], inside ? image.alpha[size_t(sy * 5 + sx)] : 0);
    }
  }
  // HF: column 1 (floor), two black rows above.
  const data::Image hf = center_crop(image, 2, 6, CropRounding::hf);
  EXPECT_EQ(hf.rgb[0], 0);
  EXPECT_EQ(hf.rgb[size_t(2 * 2) * 3], image.rgb[size_t(1) * 3]);
}

TEST(PilResize, WindowEqualsCropOfWholeResize) {
  for (bool alpha : {false, true}) {
    const data::Image image = noise_image(37, 23, alpha);
    for (Filter filter : {Filter::nearest, Filter::bilinear, Filter::bicubic, Filter::lanczos}) {
      const data::Image whole = resize(image, 50, 17, filter);
      for (Rect window :
           {Rect{0, 0, 50, 17}, Rect{7, 3, 20, 9}, Rect{-3, -2, 56, 21}, Rect{45, 15, 10, 10}}) {
        SCOPED_TRACE(str_cat("alpha ", alpha, " filter ", int(filter), " window ", window.x, ",", window.y));
        const data::Image part = resize_window(image, 50, 17, filter, window);
        ASSERT_EQ(part.rgb.size(), size_t(window.width) * window.height * 3);
        for (int y = 0; y < window.height; ++y) {
          for (int x = 0; x < window.width; ++x) {
            const int wx = window.x + x, wy = window.y + y;
            const bool inside = wx >= 0 && wx < 50 && wy >= 0 && wy < 17;
            const size_t at = size_t(y * window.width + x), from = size_t(wy * 50 + wx);
            for (int c = 0; c < 3; ++c) ASSERT_EQ(part.rgb[at * 3 + c], inside ? whole.rgb[from * 3 + c] : 0);
            if (alpha) ASSERT_EQ(part.alpha[at], inside ? whole.alpha[from] : 0);
          }
        }
      }
    }
  }
}

TEST(PilResize, SameSizeCopiesAndFlatStaysFlat) {
  const data::Image image = noise_image(9, 7, /*alpha=*/true);
  const data::Image copy = resize(image, 9, 7, Filter::lanczos);
  EXPECT_EQ(copy.rgb, image.rgb);
  EXPECT_EQ(copy.alpha, image.alpha);
  data::Image flat{31, 19, std::vector<uint8_t>(31 * 19 * 3, 173)};
  for (Filter filter : {Filter::box, Filter::bilinear, Filter::hamming, Filter::bicubic, Filter::lanczos}) {
    for (auto [w, h] : {std::pair{5, 3}, std::pair{64, 40}, std::pair{31, 100}}) {
      const data::Image out = resize(flat, w, h, filter);
      EXPECT_EQ(out.rgb, std::vector<uint8_t>(size_t(w) * h * 3, 173)) << int(filter) << " " << w << "x" << h;
    }
  }
}

TEST(PilResize, RejectsBadInput) {
  const data::Image image = noise_image(4, 4);
  EXPECT_NE(error_of([&] { resize(data::Image{}, 2, 2); }).find("empty image"), std::string::npos);
  EXPECT_NE(error_of([&] {
              resize(data::Image{4, 4, std::vector<uint8_t>(10)}, 2, 2);
            }).find("4x4 but holds 10"),
            std::string::npos);
  data::Image bad_alpha = image;
  bad_alpha.alpha.resize(3);
  EXPECT_NE(error_of([&] { resize(bad_alpha, 2, 2); }).find("alpha bytes"), std::string::npos);
  EXPECT_NE(error_of([&] { resize(image, 0, 2); }).find("output size must be positive"), std::string::npos);
  EXPECT_NE(error_of([&] {
              resize_window(image, 2, 2, Filter::bicubic, {0, 0, 0, 2});
            }).find("window"),
            std::string::npos);
}

TEST(ClipPreprocess, DefaultIsOpenAi224AndNormalisesLikeToTensor) {
  data::Image flat{300, 200, std::vector<uint8_t>(300 * 200 * 3)};
  for (size_t i = 0; i < flat.rgb.size(); i += 3)
    flat.rgb[i] = 10, flat.rgb[i + 1] = 128, flat.rgb[i + 2] = 250;
  const ImagePreprocess config;
  const PixelTensor x = preprocess(flat, config);
  ASSERT_EQ(x.width, 224);
  ASSERT_EQ(x.height, 224);
  const uint8_t levels[3] = {10, 128, 250};
  for (int c = 0; c < 3; ++c) {
    const float expected = (float(levels[c]) / 255.0f - config.mean[c]) / config.std_dev[c];
    EXPECT_EQ(x.chw[size_t(c) * 224 * 224], expected);
    EXPECT_EQ(x.chw[size_t(c + 1) * 224 * 224 - 1], expected);
  }
}

TEST(ClipPreprocess, ExtremeAspectRatioComputesOnlyTheCrop) {
  // 1 x 200000 resizes to 224 x 44,800,000 (30 GB of pixels); only the 224 x 224 crop is computed.
  const data::Image strip{1, 200000, std::vector<uint8_t>(200000 * 3, 77)};
  ImagePreprocess config;
  config.family = ImagePreprocess::Family::hf;
  const PixelTensor x = preprocess(strip, config);
  ASSERT_EQ(x.chw.size(), 3u * 224 * 224);
  EXPECT_EQ(x.chw.front(), (float(77 * (1.0 / 255)) - config.mean[0]) / config.std_dev[0]);
}

TEST(ClipPreprocess, RejectsBadConfigs) {
  const data::Image image = noise_image(8, 8);
  auto error = [&](auto edit) {
    ImagePreprocess config;
    edit(config);
    return error_of([&] { preprocess(image, config); });
  };
  EXPECT_NE(error([](ImagePreprocess& p) { p.std_dev[1] = 0; }).find("channel 1"), std::string::npos);
  EXPECT_NE(error([](ImagePreprocess& p) { p.crop_height = 0; }).find("crop size"), std::string::npos);
  EXPECT_NE(error([](ImagePreprocess& p) { p.resize_shortest = -1; }).find("negative"), std::string::npos);
  EXPECT_NE(error([](ImagePreprocess& p) { p.resize_shortest = 0, p.resize_width = 5; }).find("both"),
            std::string::npos);
  EXPECT_NE(error([](ImagePreprocess& p) { p.rescale_factor = 0; }).find("rescale_factor"),
            std::string::npos);
  EXPECT_NE(error_of([&] { preprocess(data::Image{}, ImagePreprocess{}); }).find("empty image"),
            std::string::npos);
}

TEST(PilDecode, NeedsFullSize) {
  const std::string png = data::encode_png(noise_image(4, 4));
  EXPECT_NE(
      error_of([&] { data::decode_image(png, "x.png", {.max_side = 2, .pil = true}); }).find("max_side"),
      std::string::npos);
  EXPECT_NE(
      error_of([&] { data::decode_image(png, "x.png", {.max_pixels = 15, .pil = true}); }).find("limit"),
      std::string::npos);
}

class HfPreprocessorConfig : public ::testing::Test {
 protected:
  ImagePreprocess read(const std::string& text) {
    const fs::path path = test::temp_dir("config") / "preprocessor_config.json";
    write_file_atomic(path, text);
    return read_hf_preprocessor_config(path);
  }
  std::string error(const std::string& text) {
    return error_of([&] { read(text); });
  }
};

TEST_F(HfPreprocessorConfig, MissingFieldsTakeClipImageProcessorDefaults) {
  const ImagePreprocess p = read("{}");
  const ImagePreprocess openai;
  EXPECT_EQ(p.family, ImagePreprocess::Family::hf);
  EXPECT_EQ(p.resize_shortest, 224);
  EXPECT_EQ(p.resize_width, 0);
  EXPECT_EQ(p.filter, Filter::bicubic);
  EXPECT_EQ(p.crop_width, 224);
  EXPECT_EQ(p.crop_height, 224);
  EXPECT_EQ(p.rescale_factor, 1.0 / 255);
  EXPECT_EQ(p.mean, openai.mean);
  EXPECT_EQ(p.std_dev, openai.std_dev);
}

TEST_F(HfPreprocessorConfig, ReadsEveryForm) {
  ImagePreprocess p =
      read(R"({"image_processor_type": "CLIPImageProcessor", "size": {"height": 40, "width": 50},
      "crop_size": 30, "resample": 2, "rescale_factor": 0.5,
      "image_mean": 0.5, "image_std": [0.25, 0.5, 2]})");
  EXPECT_EQ(p.resize_shortest, 0);
  EXPECT_EQ(p.resize_width, 50);
  EXPECT_EQ(p.resize_height, 40);
  EXPECT_EQ(p.crop_width, 30);
  EXPECT_EQ(p.crop_height, 30);
  EXPECT_EQ(p.filter, Filter::bilinear);
  EXPECT_EQ(p.rescale_factor, 0.5);
  EXPECT_EQ(p.mean, (std::array<float, 3>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(p.std_dev, (std::array<float, 3>{0.25f, 0.5f, 2.0f}));

  p = read(R"({"feature_extractor_type": "CLIPFeatureExtractor", "size": 336,
      "crop_size": {"height": 300, "width": 320}})");
  EXPECT_EQ(p.resize_shortest, 336);
  EXPECT_EQ(p.crop_width, 320);
  EXPECT_EQ(p.crop_height, 300);

  p = read(R"({"do_resize": false, "do_center_crop": false, "do_rescale": false, "do_normalize": false,
      "size": "ignored", "image_std": [0, 0, 0]})");
  EXPECT_EQ(p.resize_shortest, 0);
  EXPECT_EQ(p.resize_width, 0);
  EXPECT_EQ(p.crop_width, 0);
  EXPECT_EQ(p.rescale_factor, 1.0);
  EXPECT_EQ(p.mean, (std::array<float, 3>{0, 0, 0}));
  EXPECT_EQ(p.std_dev, (std::array<float, 3>{1, 1, 1}));
}

TEST_F(HfPreprocessorConfig, BadValuesNameTheFileAndTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"size": "large"})", "\"size\""},
      {R"({"size": {"longest_edge": 5}})", "\"size\""},
      {R"({"size": {"shortest_edge": 0}})", "\"size\""},
      {R"({"crop_size": -3})", "\"crop_size\""},
      {R"({"crop_size": {"height": 3}})", "\"crop_size\""},
      {R"({"resample": 9})", "\"resample\""},
      {R"({"do_resize": "yes"})", "\"do_resize\""},
      {R"({"rescale_factor": "1/255"})", "\"rescale_factor\""},
      {R"({"image_mean": [1, 2]})", "\"image_mean\""},
      {R"({"image_std": [1, 0, 1]})", "\"image_std\""},
      {R"({"image_processor_type": "SiglipImageProcessor"})", "\"image_processor_type\""},
      {R"([1, 2])", "JSON object"},
      {R"({"size": )", "not valid JSON"},
  };
  for (const auto& [text, field] : cases) {
    const std::string message = error(text);
    EXPECT_NE(message.find("preprocessor_config.json"), std::string::npos) << text << ": " << message;
    EXPECT_NE(message.find(field), std::string::npos) << text << ": " << message;
  }
  EXPECT_NE(error_of([] {
              read_hf_preprocessor_config("/nonexistent/preprocessor_config.json");
            }).find("/nonexistent/preprocessor_config.json"),
            std::string::npos);
}

}  // namespace
}  // namespace mmlearn::vision
