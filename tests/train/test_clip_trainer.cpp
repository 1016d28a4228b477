#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/train/trainer.h"

using namespace mmlearn;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One shapes data set shared by the tests of this file (generating it is the slow part).
const fs::path& shapes_dir() {
  static const fs::path dir = [] {
    fs::path d =
        fs::temp_directory_path() / "mmlearn-tests" / ("trainer-shapes-" + std::to_string(::getpid()));
    fs::remove_all(d);
    data::generate_shapes(d, {.n_train = 1024, .n_test = 200, .seed = 7});
    return d;
  }();
  return dir;
}

std::vector<json> read_jsonl(const fs::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

TrainOptions quick(const fs::path& out) {
  Progress::set_enabled(false);
  return {.preset = "clip-tiny",
          .data = shapes_dir(),
          .out = out,
          .steps = 60,
          .batch_size = 64,
          .learning_rate = 2e-3,
          .seed = 3,
          .eval_every = 30,
          .eval_samples = 200};
}

}  // namespace

TEST(ClipTrainer, LossFallsAndRetrievalBeatsChance) {
  auto out = test::temp_dir("run");
  TrainResult r = train(quick(out));
  EXPECT_EQ(r.steps, 60);
  auto lines = read_jsonl(out / "metrics.jsonl");
  std::vector<double> losses;
  for (const auto& l : lines)
    if (l.contains("loss")) losses.push_back(l["loss"].get<double>());
  ASSERT_GE(losses.size(), 4u);
  EXPECT_LT(losses.back(), 0.8 * losses.front()) << "loss did not fall";
  // 200 held-out scenes: chance R@10 is 5%.
  const double r10 = r.final_eval["retrieval"]["text_to_image"]["R@10"].get<double>();
  EXPECT_GT(r10, 0.15);
  EXPECT_GT(r.final_eval["zero_shot"]["color"].get<double>(), 1.0 / 6 + 0.1);
  // The run directory opens as a model and gives the embeddings training ended with.
  ClipBundle clip = load_clip(out);
  EXPECT_EQ(clip.model->config.text.vocab_size, clip.tokenizer.vocab_size());
  for (const char* f : {"config.json", "model.safetensors", "vocab.json", "merges.txt"})
    EXPECT_TRUE(fs::exists(out / f));
}

TEST(ClipTrainer, ResumeReproducesAnUninterruptedRun) {
  auto straight = test::temp_dir("straight"), sliced = test::temp_dir("sliced");
  auto o = quick(straight);
  o.steps = 12;
  o.eval_every = 1000;
  train(o);
  o.out = sliced;
  o.stop_after = 5;
  EXPECT_EQ(train(o).steps, 5);
  EXPECT_FALSE(fs::exists(sliced / "model.safetensors"));
  EXPECT_THROW(train(o), Error);  // not without --resume
  o.resume = true;
  o.stop_after = 0;
  EXPECT_EQ(train(o).steps, 12);
  auto a = load_safetensors(straight / "model.safetensors"),
       b = load_safetensors(sliced / "model.safetensors");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  std::vector<double> la, lb;
  for (const auto& l : read_jsonl(straight / "metrics.jsonl"))
    if (l.contains("loss")) la.push_back(l["step"].get<double>());
  for (const auto& l : read_jsonl(sliced / "metrics.jsonl"))
    if (l.contains("loss")) lb.push_back(l["step"].get<double>());
  EXPECT_EQ(la, lb);
}

TEST(ClipTrainer, BadRecordsAreSkippedAndCounted) {
  auto dir = test::temp_dir("bad");
  std::ofstream(dir / "corrupt.png") << "not a png";
  std::ifstream in(shapes_dir() / "train.jsonl");
  std::ofstream out(dir / "train.jsonl");
  int n = 0;
  for (std::string line; std::getline(in, line) && n < 200; ++n) {
    auto j = json::parse(line);
    j["image"] = (shapes_dir() / j["image"].get<std::string>()).string();
    if (n % 50 == 1) j["image"] = "missing.png";
    if (n % 50 == 2) j.erase("text");
    if (n % 50 == 3) j["image"] = (dir / "corrupt.png").string();
    out << j.dump() << "\n";
  }
  out.close();
  auto o = quick(test::temp_dir("run"));
  o.data = dir / "train.jsonl";
  o.steps = 2;
  TrainResult r = train(o);
  EXPECT_EQ(r.skipped_records, 12);
  EXPECT_TRUE(r.final_eval.is_null());
}

TEST(ClipTrainer, ClearErrorsForBadSetups) {
  auto o = quick(test::temp_dir("run"));
  o.preset = "clip-huge";
  try {
    train(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown preset"), std::string::npos);
  }
  o = quick(test::temp_dir("run2"));
  o.data = test::temp_dir("empty");
  try {
    train(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.jsonl"), std::string::npos);
  }
}
