// The mood task: the label rule, ceilings that hold on the data written, and byte-identical output.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/data/mood.h"

namespace mmlearn::data {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Mood, SarcasmReversesTheWordsAndFacesShowTheMoodOutright) {
  auto index = [](const std::vector<std::string>& v, const std::string& x) {
    return int(std::find(v.begin(), v.end(), x) - v.begin());
  };
  auto label = [&](const char* face, const char* words) {
    return mood_labels()[size_t(mood_label(index(mood_expressions(), face), index(mood_words(), words)))];
  };
  EXPECT_EQ(label("eye-roll", "positive"), "negative");  // "what a great meeting" with rolled eyes
  EXPECT_EQ(label("eye-roll", "negative"), "positive");
  EXPECT_EQ(label("deadpan", "positive"), "positive");
  EXPECT_EQ(label("deadpan", "neutral"), "neutral");
  EXPECT_EQ(label("frown", "positive"), "negative");
  EXPECT_EQ(label("smile", "negative"), "positive");
  EXPECT_THROW(mood_label(4, 0), Error);
}

TEST(Mood, CeilingsAreTheBestOneModalityCanDoOnTheRecordsWritten) {
  auto dir = test::temp_dir("mood");
  auto summary =
      generate_mood(dir, {.n_train = 300, .n_test = 100, .seed = 3, .image_size = 32, .threads = 2});
  EXPECT_EQ(summary.records, 400);
  const auto ceiling = read_json_file(dir / "ceiling.json");
  EXPECT_EQ(ceiling, summary.ceiling);
  // For the generating distribution: 0.65 from the face, 0.5 from the words (see mood.h), far from 1.
  EXPECT_NEAR(ceiling["ceiling"]["image"].get<double>(), 0.65, 1e-9);
  EXPECT_NEAR(ceiling["ceiling"]["text"].get<double>(), 0.5, 1e-9);

  // Recompute the test split's ceiling from the records themselves: the majority label per face, per words.
  const auto test = read_manifest(dir / "test.jsonl");
  ASSERT_EQ(test.records.size(), 100u);
  for (const std::string field : {"expression", "words"}) {
    std::map<std::string, std::map<std::string, int>> counts;
    for (const auto& r : test.records) ++counts[r.json[field]][r.json["label"]];
    int best = 0;
    for (const auto& [value, labels] : counts) {
      int top = 0;
      for (const auto& [label, n] : labels) top = std::max(top, n);
      best += top;
    }
    EXPECT_NEAR(ceiling["splits"]["test"][field == "expression" ? "image" : "text"].get<double>(),
                best / 100.0, 1e-9)
        << field;
  }
  const auto& first = test.records[0].json;
  const Image face = read_image(test.resolve(first["image"]));
  EXPECT_EQ(face.width, 32);
  EXPECT_FALSE(first["text"].get<std::string>().empty());
  EXPECT_FALSE(first.contains("audio"));
}

TEST(Mood, OutputIsAPureFunctionOfTheConfig) {
  auto a = test::temp_dir("a"), b = test::temp_dir("b");
  generate_mood(a, {.n_train = 70, .n_test = 10, .seed = 5, .threads = 1});
  generate_mood(b, {.n_train = 70, .n_test = 10, .seed = 5, .threads = 3});
  for (const char* f : {"train.jsonl", "test.jsonl", "ceiling.json", "images/train/000069.png"})
    EXPECT_EQ(slurp(a / f), slurp(b / f)) << f;
  EXPECT_NE(test::error_of([&] { generate_mood(a, {.image_size = 8}); }).find("image_size"),
            std::string::npos);
}

TEST(Mood, SpeechCarriesSarcasmInItsProsody) {
  auto dir = test::temp_dir("speech");
  generate_mood(dir, {.n_train = 12, .n_test = 0, .seed = 2, .image_size = 24, .audio = true});
  const auto train = read_manifest(dir / "train.jsonl");
  for (const auto& r : train.records) {
    ASSERT_TRUE(std::filesystem::exists(train.resolve(r.json["audio"])));
    const bool sarcastic = r.json["expression"] == "eye-roll";
    EXPECT_EQ(r.json["voice"]["rate"].get<int>() < 130, sarcastic) << r.json.dump();
  }
  EXPECT_EQ(read_json_file(dir / "ceiling.json")["modalities"].size(), 3u);
}

}  // namespace
}  // namespace mmlearn::data
