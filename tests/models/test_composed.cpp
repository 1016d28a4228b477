// Composed retrieval: the edit triplets say what changed and change only that; the combiner trains on them
// over a CLIP, is evaluated against the arithmetic baseline, and answers composed searches.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/data/shapes.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::vector<json> read_records(const fs::path& manifest) {
  std::vector<json> records;
  std::ifstream in(manifest);
  for (std::string line; std::getline(in, line);) records.push_back(json::parse(line));
  return records;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The fields of an object other than `except`, to check that an edit leaves them alone.
json without(json object, std::initializer_list<const char*> except) {
  for (const char* key : except) object.erase(key);
  return object;
}

TEST(ShapeEdits, TripletsSayWhatChangedAndChangeOnlyThat) {
  const fs::path dir = test::temp_dir("edits");
  data::generate_shapes(dir, {.n_train = 300,
                              .n_test = 0,
                              .seed = 4,
                              .image_size = 48,
                              .threads = 2,
                              .task = data::ShapesTask::edit});
  std::map<std::string, int> kinds;
  for (const json& r : read_records(dir / "train.jsonl")) {
    SCOPED_TRACE(r.dump());
    const std::string text = r["text"], kind = r["edit"];
    const json &before = r["objects"], &after = r["target_objects"];
    ++kinds[kind];
    ASSERT_TRUE(fs::exists(dir / r["image"].get<std::string>()));
    ASSERT_TRUE(fs::exists(dir / r["target"].get<std::string>()));
    EXPECT_NE(read_file(dir / r["image"].get<std::string>()),
              read_file(dir / r["target"].get<std::string>()));
    if (kind == "remove") {
      ASSERT_EQ(after.size() + 1, before.size());
      continue;
    }
    if (kind == "add") {
      ASSERT_EQ(after.size(), before.size() + 1);
      const json& added = after.back();
      EXPECT_TRUE(
          contains(text, added["color"].get<std::string>() + " " + added["shape"].get<std::string>()));
      continue;
    }
    ASSERT_EQ(after.size(), before.size());
    int changed = 0;
    for (size_t i = 0; i < before.size(); ++i) {
      if (before[i] == after[i]) continue;
      ++changed;
      const json &a = before[i], &b = after[i];
      if (kind == "color") {
        EXPECT_EQ(without(a, {"color"}), without(b, {"color"}));
        EXPECT_TRUE(ends_with(text, b["color"].get<std::string>()));
      } else if (kind == "shape") {
        EXPECT_EQ(without(a, {"shape"}), without(b, {"shape"}));
        EXPECT_TRUE(ends_with(text, b["shape"].get<std::string>()));
      } else if (kind == "size") {
        EXPECT_EQ(without(a, {"size"}), without(b, {"size"}));
        const bool grew = b["size"] == "large";
        EXPECT_EQ(grew, contains(text, "larger") || contains(text, "bigger"));
      } else {
        ASSERT_EQ(kind, "move");
        EXPECT_EQ(without(a, {"x", "y"}), without(b, {"x", "y"}));
        const double dx = b["x"].get<double>() - a["x"].get<double>(),
                     dy = b["y"].get<double>() - a["y"].get<double>();
        const std::string way = dx < -0.1 ? "left" : dx > 0.1 ? "right" : dy < -0.1 ? "up" : "down";
        EXPECT_TRUE(ends_with(text, way));
      }
      // The object is named so that no other object answers to the name.
      EXPECT_TRUE(contains(text, a["shape"].get<std::string>()));
    }
    EXPECT_EQ(changed, 1);
  }
  for (const char* kind : {"color", "shape", "size", "move", "remove", "add"})
    EXPECT_GT(kinds[kind], 0) << kind;

  // Same seed, other thread count: the same bytes.
  const fs::path again = test::temp_dir("edits-again");
  data::generate_shapes(again, {.n_train = 300,
                                .n_test = 0,
                                .seed = 4,
                                .image_size = 48,
                                .threads = 1,
                                .task = data::ShapesTask::edit});
  EXPECT_EQ(read_file(dir / "train.jsonl"), read_file(again / "train.jsonl"));
  EXPECT_EQ(read_file(dir / "images/train/000123_target.png"),
            read_file(again / "images/train/000123_target.png"));
}

// The verbs: a clip-tiny trained for a few steps, and a combiner over it.
class ComposedCli : public ::testing::Test {
 protected:
  static fs::path dir_;
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / "mmlearn-tests" / ("composed-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    for (const auto& args :
         {str_cat("data shapes --out ", path("shapes"), " --train 64 --test 16 --seed 3"),
          str_cat("data shapes --task edit --out ", path("edit"), " --train 96 --test 24 --seed 3"),
          str_cat("train --preset clip-tiny --data ", path("shapes"), " --out ", path("clip"),
                  " --steps 2 --batch-size 16"),
          str_cat("train --task composed --init-from ", path("clip"), " --data ", path("edit"), " --out ",
                  path("combiner"), " --steps 12 --batch-size 16")}) {
      const auto r = test::run_cli(args);
      ASSERT_EQ(r.status, 0) << args << "\n" << r.output;
    }
  }
  static std::string path(const std::string& p) { return (dir_ / p).string(); }
};
fs::path ComposedCli::dir_;

TEST_F(ComposedCli, EvaluatesBothWaysOfComposing) {
  const auto r =
      test::run_cli(str_cat("eval --model ", path("combiner"), " --data ", path("edit"), " --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  const json m = json::parse(r.output);
  for (const char* method : {"arithmetic", "learned"})
    for (const char* k : {"R@1", "R@10"}) {
      const double v = m[method][k].get<double>();
      EXPECT_TRUE(v >= 0 && v <= 1) << method << " " << k << " " << v;
    }
  EXPECT_EQ(m["records"], 24);
  EXPECT_LE(m["learned"]["R@1"].get<double>(), m["learned"]["R@10"].get<double>());
}

TEST_F(ComposedCli, SearchesWithTheCombinerOrTheArithmeticBaseline) {
  auto r = test::run_cli(str_cat("index build --model ", path("clip"), " --data ", path("shapes/test.jsonl"),
                                 " --out ", path("idx")));
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string query = str_cat(" --image ", path("shapes/images/test/000003.png"),
                                    " --text 'make the circle red' --k 5 --json");
  std::vector<json> answers;
  for (const std::string& model : {path("combiner"), path("clip")}) {
    r = test::run_cli(str_cat("search --index ", path("idx"), " --model ", model, query));
    ASSERT_EQ(r.status, 0) << r.output;
    answers.push_back(json::parse(r.output)["results"]);
    ASSERT_EQ(answers.back().size(), 5u);
  }
  std::vector<double> learned, arithmetic;
  for (const auto& hit : answers[0]) learned.push_back(hit["score"]);
  for (const auto& hit : answers[1]) arithmetic.push_back(hit["score"]);
  EXPECT_NE(learned, arithmetic);  // two ways of composing, two rankings
}

TEST_F(ComposedCli, RefusesARunWithoutACLIPOrWithFlagsItDoesNotRead) {
  auto r = test::run_cli(
      str_cat("train --task composed --data ", path("edit"), " --out ", path("x"), " --steps 1"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--init-from"), std::string::npos) << r.output;
  r = test::run_cli(str_cat("train --task composed --init-from ", path("clip"), " --data ", path("edit"),
                            " --out ", path("y"), " --steps 1 --freeze-towers"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--freeze-towers does not apply"), std::string::npos) << r.output;
  // Scenes without targets are not edit triplets.
  r = test::run_cli(str_cat("train --task composed --init-from ", path("clip"), " --data ", path("shapes"),
                            " --out ", path("z"), " --steps 1"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("no usable edit triplets"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mmlearn
