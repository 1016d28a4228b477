// The shapes synthetic world: determinism (seed, thread count), record structure, and images that decode.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../test_util.h"
#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/data/shapes.h"

namespace mmlearn::data {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

ShapesConfig small_config(uint64_t seed, int threads) {
  return {.n_train = 40, .n_test = 10, .seed = seed, .image_size = 48, .max_objects = 3, .threads = threads};
}

std::vector<Json> read_records(const fs::path& manifest) {
  std::vector<Json> records;
  std::istringstream lines(read_file(manifest));
  for (std::string line; std::getline(lines, line);) records.push_back(Json::parse(line));
  return records;
}

// The files whose bytes must be reproducible.
const std::vector<std::string> kCompared = {"train.jsonl",
                                            "test.jsonl",
                                            "classes.json",
                                            "images/train/000000.png",
                                            "images/train/000017.png",
                                            "images/train/000039.png",
                                            "images/test/000003.png"};

TEST(Shapes, SameSeedGivesIdenticalBytes) {
  const fs::path a = test::temp_dir("a"), b = test::temp_dir("b");
  generate_shapes(a, small_config(3, 2));
  generate_shapes(b, small_config(3, 2));
  for (const auto& file : kCompared) EXPECT_EQ(read_file(a / file), read_file(b / file)) << file;
}

TEST(Shapes, ThreadCountDoesNotChangeOutput) {
  const fs::path a = test::temp_dir("one"), b = test::temp_dir("two");
  ShapesConfig config = small_config(11, 1);
  config.n_train = 100;  // several chunks of work
  generate_shapes(a, config);
  config.threads = 2;
  generate_shapes(b, config);
  for (const auto& file : kCompared) EXPECT_EQ(read_file(a / file), read_file(b / file)) << file;
  EXPECT_EQ(read_file(a / "images/train/000099.png"), read_file(b / "images/train/000099.png"));
}

TEST(Shapes, SpokenCaptionsAreReproducibleAndSayTheCaption) {
  const fs::path a = test::temp_dir("a"), b = test::temp_dir("b"), plain = test::temp_dir("plain");
  ShapesConfig config = small_config(5, 1);
  config.n_train = 24;
  config.audio = true;
  generate_shapes(a, config);
  config.threads = 2;
  generate_shapes(b, config);
  config.audio = false;
  generate_shapes(plain, config);
  const auto records = read_records(a / "train.jsonl");
  const auto without = read_records(plain / "train.jsonl");
  ASSERT_EQ(records.size(), 24u);
  std::set<std::string> voices;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    const std::string path = r["audio"];
    EXPECT_EQ(read_file(a / path), read_file(b / path)) << path;  // whatever the thread count or order
    voices.insert(r["voice"]["name"].get<std::string>());
    // Speech adds fields and leaves the others as they were.
    Json stripped = r;
    stripped.erase("audio");
    stripped.erase("voice");
    EXPECT_EQ(stripped, without[i]);
    auto samples = audio::load_audio(a / path);
    const double seconds = samples.size() / 16000.0;
    double energy = 0;
    for (float v : samples) energy += double(v) * v;
    EXPECT_GT(seconds, 0.5) << path;
    EXPECT_LT(seconds, 8.0) << path;
    EXPECT_GT(std::sqrt(energy / samples.size()), 0.01) << path << " is nearly silent";
  }
  EXPECT_GE(voices.size(), 4u);
}

TEST(Shapes, DifferentSeedOrSplitDiffers) {
  const fs::path a = test::temp_dir("a"), b = test::temp_dir("b");
  generate_shapes(a, small_config(3, 2));
  generate_shapes(b, small_config(4, 2));
  EXPECT_NE(read_file(a / "train.jsonl"), read_file(b / "train.jsonl"));
  EXPECT_NE(read_file(a / "images/train/000000.png"), read_file(b / "images/train/000000.png"));
  // Train and test draw from different streams.
  EXPECT_NE(read_file(a / "images/train/000000.png"), read_file(a / "images/test/000000.png"));
  EXPECT_NE(read_records(a / "train.jsonl")[0]["objects"], read_records(a / "test.jsonl")[0]["objects"]);
}

TEST(Shapes, RecordsAreWellFormed) {
  const fs::path dir = test::temp_dir("data");
  int64_t last_done = -1, last_total = -1;
  const ShapesSummary summary = generate_shapes(dir, small_config(5, 2), [&](int64_t done, int64_t total) {
    EXPECT_GT(done, last_done);
    last_done = done;
    last_total = total;
  });
  EXPECT_EQ(summary.records, 50);
  EXPECT_EQ(last_done, 50);
  EXPECT_EQ(last_total, 50);

  int n_single = 0;
  for (const std::string split : {"train", "test"}) {
    const auto records = read_records(dir / (split + ".jsonl"));
    ASSERT_EQ(records.size(), split == "train" ? 40u : 10u);
    for (size_t i = 0; i < records.size(); ++i) {
      const Json& r = records[i];
      SCOPED_TRACE(r.dump());
      std::vector<std::string> keys;
      for (auto it = r.begin(); it != r.end(); ++it) keys.push_back(it.key());
      const size_t n = r["objects"].size();
      std::vector<std::string> expected_keys = {"id", "image", "text", "objects", "n_objects", "qa"};
      if (n == 1) expected_keys.insert(expected_keys.begin() + 5, "labels");
      EXPECT_EQ(keys, expected_keys);

      char id[32];
      std::snprintf(id, sizeof id, "%s-%06zu", split.c_str(), i);
      EXPECT_EQ(r["id"], id);
      EXPECT_EQ(r["n_objects"], n);
      EXPECT_GE(n, 1u);
      EXPECT_LE(n, 3u);

      const Image image = read_image(dir / r["image"].get<std::string>());
      EXPECT_EQ(image.width, 48);
      EXPECT_EQ(image.height, 48);

      const std::string text = r["text"];
      for (const Json& o : r["objects"]) {
        EXPECT_NE(text.find(o["color"].get<std::string>()), std::string::npos);
        EXPECT_NE(text.find(o["shape"].get<std::string>()), std::string::npos);
        EXPECT_GE(o["x"].get<double>(), 0.0);
        EXPECT_LE(o["x"].get<double>(), 1.0);
        EXPECT_GE(o["y"].get<double>(), 0.0);
        EXPECT_LE(o["y"].get<double>(), 1.0);
      }
      if (n == 1) {
        ++n_single;
        const Json& o = r["objects"][0];
        EXPECT_EQ(r["labels"], (Json{{"color", o["color"]}, {"shape", o["shape"]}, {"size", o["size"]}}));
      }
      bool has_count = false;
      for (const Json& qa : r["qa"]) {
        if (qa["question"] == "how many objects are there?") {
          has_count = true;
          EXPECT_EQ(qa["answer"], std::to_string(n));
        }
      }
      EXPECT_TRUE(has_count);
    }
  }
  EXPECT_GT(n_single, 0);

  const Json classes = Json::parse(read_file(dir / "classes.json"));
  EXPECT_EQ(classes["template"], "a {size} {color} {shape}");
  EXPECT_EQ(classes["attributes"]["color"].get<std::vector<std::string>>(), color_names());
  EXPECT_EQ(classes["attributes"]["shape"].get<std::vector<std::string>>(), shape_names());
  EXPECT_EQ(classes["attributes"]["size"].get<std::vector<std::string>>(), size_names());
}

TEST(Shapes, EmptySplitsAreWritten) {
  const fs::path dir = test::temp_dir("empty");
  const ShapesSummary summary = generate_shapes(dir, {.n_train = 0, .n_test = 0});
  EXPECT_EQ(summary.records, 0);
  EXPECT_EQ(read_file(dir / "train.jsonl"), "");
  EXPECT_TRUE(fs::exists(dir / "classes.json"));
}

TEST(Shapes, InvalidConfigIsRefused) {
  const fs::path dir = test::temp_dir("bad");
  auto message = [&](const ShapesConfig& config) -> std::string {
    try {
      generate_shapes(dir, config);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({.n_train = -1}).find("n_train"), std::string::npos);
  EXPECT_NE(message({.n_test = -5}).find("n_test"), std::string::npos);
  EXPECT_NE(message({.image_size = 8}).find("image_size"), std::string::npos);
  EXPECT_NE(message({.image_size = 4096}).find("image_size"), std::string::npos);
  EXPECT_NE(message({.max_objects = 4}).find("max_objects"), std::string::npos);
  EXPECT_NE(message({.max_objects = 0}).find("max_objects"), std::string::npos);
}

}  // namespace
}  // namespace mmlearn::data
