// Training the fusion classifier: modality dropout, the saved model, and learning the mood task's
// cross-modal rule beyond what any one modality allows.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/mood.h"
#include "mmlearn/eval/classifier_eval.h"
#include "mmlearn/train/trainer.h"

namespace mmlearn {
namespace {

TEST(FusionTrainer, ModalityDropoutNeverHidesEverything) {
  ClassifierBatch batch;
  batch.present["image"] = torch::tensor({true, true, false, true});
  batch.present["text"] = torch::tensor({true, false, true, true});
  auto generator = at::detail::createCPUGenerator(7);
  int64_t hidden = 0;
  for (int trial = 0; trial < 50; ++trial) {
    auto b = batch;
    drop_modalities(b, 0.9, generator, 0, 4);
    auto image = b.present["image"], text = b.present["text"];
    EXPECT_TRUE((image | text).all().item<bool>());
    EXPECT_FALSE((image & batch.present["image"].logical_not()).any().item<bool>());  // never adds one
    EXPECT_TRUE(image[1].item<bool>() && text[2].item<bool>());  // an example's only modality stays
    hidden += (batch.present["image"] & image.logical_not()).sum().item<int64_t>();
  }
  EXPECT_GT(hidden, 20);  // with p = 0.9, examples 0 and 3 lose one of their two modalities most of the time
}

// Data-parallel workers each hold part of a micro-batch: the examples they hide are those one process
// holding all of it would hide.
TEST(FusionTrainer, ModalityDropoutDoesNotDependOnHowTheBatchIsSplit) {
  ClassifierBatch whole;
  whole.present["image"] = torch::tensor({true, true, false, true, true, true});
  whole.present["text"] = torch::tensor({true, false, true, true, true, true});
  auto split = [&](int64_t offset, int64_t n) {
    ClassifierBatch part;
    for (const auto& [m, p] : whole.present) part.present[m] = p.narrow(0, offset, n);
    auto generator = at::detail::createCPUGenerator(11);
    drop_modalities(part, 0.5, generator, offset, 6);
    return torch::stack({part.present["image"], part.present["text"]}, 1);
  };
  const auto one = split(0, 6);
  EXPECT_TRUE(torch::equal(one, torch::cat({split(0, 2), split(2, 4)})));
  EXPECT_TRUE(torch::equal(one, torch::cat({split(0, 3), split(3, 3)})));
}

TEST(FusionTrainer, LearnsTheMoodRuleBeyondEitherModalityAlone) {
  Progress::set_enabled(false);
  auto dir = test::temp_dir("mood");
  const auto made = data::generate_mood(dir / "data", {.n_train = 1200, .n_test = 150, .seed = 4});
  const TrainOptions o{.task = "classify",
                       .data = dir / "data",
                       .out = dir / "run",
                       .steps = 360,
                       .batch_size = 48,
                       .fusion = "concat"};
  const auto result = train(o);
  const auto& ceiling = made.ceiling["splits"]["test"];
  const double best_alone = std::max(ceiling["image"].get<double>(), ceiling["text"].get<double>());
  EXPECT_GT(result.final_eval["accuracy"].get<double>(), best_alone + 0.1) << result.final_eval.dump();

  // The directory holds the model that was scored, and eval with the face hidden falls to what words allow.
  auto bundle = load_fusion_classifier(o.out);
  int64_t parameters = 0;
  for (const auto& p : bundle.model->parameters()) parameters += p.numel();
  EXPECT_EQ(parameters, result.parameters);
  const auto test = load_classifier_data(bundle, o.data / "test.jsonl");
  EXPECT_EQ(evaluate_fusion_classifier(bundle, test)["accuracy"], result.final_eval["accuracy"]);
  EXPECT_LE(evaluate_fusion_classifier(bundle, test, {"image"})["accuracy"].get<double>(),
            ceiling["text"].get<double>() + 0.03);
  std::ifstream metrics(o.out / "metrics.jsonl");
  int64_t lines = 0;
  for (std::string line; std::getline(metrics, line);) ++lines;
  EXPECT_GE(lines, 360);
}

}  // namespace
}  // namespace mmlearn
