// The audio–text model trained on a few spoken shapes captions: the contrastive loss falls, the run reports
// audio↔text recall on held-out clips, and the model directory it writes reopens with the same numbers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/eval/clap_eval.h"
#include "mmlearn/train/trainer.h"

using namespace mmlearn;

TEST(ClapTrainer, LossFallsAndTheSavedModelRetrievesAsTrained) {
  auto dir = test::temp_dir("clap-run");
  data::generate_shapes(dir / "data",
                        {.n_train = 64, .n_test = 16, .seed = 3, .image_size = 32, .audio = true});
  TrainOptions o{.preset = "clap-tiny",
                 .data = dir / "data",
                 .out = dir / "model",
                 .steps = 40,
                 .batch_size = 8,
                 .learning_rate = 1e-3,
                 .vocab_size = 600};
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);  // the same run every time (see the Whisper trainer's test)
  auto r = train(o);
  torch::set_num_threads(threads);
  EXPECT_EQ(r.steps, 40);
  std::ifstream metrics(o.out / "metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  ASSERT_EQ(losses.size(), 40u);
  double first = 0, last = 0;
  for (size_t i = 0; i < 8; ++i) first += losses[i] / 8, last += losses[32 + i] / 8;
  EXPECT_LT(last, first - 0.3) << "the loss did not fall";

  const auto& retrieval = r.final_eval["retrieval"];
  EXPECT_EQ(retrieval["n"], 16);
  for (const char* direction : {"audio_to_text", "text_to_audio"})
    EXPECT_GE(retrieval[direction]["R@10"].get<double>(), retrieval[direction]["R@1"].get<double>());
  auto clap = load_clap(o.out);
  auto test = data::load_audio_text(dir / "data" / "test.jsonl", 8 * 16000);
  EXPECT_EQ(evaluate_clap(clap, test)["retrieval"], retrieval);
}
