// The fusion classifier: shapes, masking of missing modalities, refusal of unknown ones, save/load.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../test_util.h"
#include "mmlearn/models/fusion_classifier.h"
#include "mmlearn/models/registry.h"

namespace mmlearn {
namespace {

FusionClassifierConfig small_config(const std::string& fusion, std::vector<std::string> modalities) {
  FusionClassifierConfig c;
  c.modalities = std::move(modalities);
  c.labels = {"a", "b", "c"};
  c.dim = 16;
  c.hidden = 8;
  c.fusion.method = fusion;
  c.fusion.heads = 2;
  c.image = {.image_size = 24, .channels = {4, 8}};
  c.text = {.context_length = 8, .vocab_size = 40, .layers = 1, .heads = 2, .eot_token_id = 39};
  c.audio = {.n_mels = 80, .n_ctx = 20, .heads = 2, .layers = 1};
  return c;
}

ClassifierBatch random_batch(const FusionClassifierConfig& c, int64_t B) {
  ClassifierBatch b;
  b.pixels = torch::randint(0, 256, {B, 3, c.image.image_size, c.image.image_size}).to(torch::kUInt8);
  b.ids = torch::randint(1, 39, {B, c.text.context_length});
  b.ids.select(1, 5).fill_(39);  // end of text
  b.mel = torch::randn({B, 80, 2 * c.audio.n_ctx});
  b.samples = torch::full({B}, 3000, torch::kLong);
  return b;
}

TEST(FusionClassifier, AnswersWithAnySubsetOfItsModalities) {
  torch::manual_seed(0);
  FusionClassifier model(small_config("cross-attention", {"image", "text", "audio"}));
  model->eval();
  auto batch = random_batch(model->config, 3);
  EXPECT_EQ(model->forward(batch).logits.sizes(), (std::vector<int64_t>{3, 3}));

  // Text absent from example 0: its tokens cannot change example 0's answer.
  batch.present["text"] = torch::tensor({false, true, true});
  const auto before = model->forward(batch).logits;
  auto changed = batch;
  changed.ids = batch.ids.clone();
  changed.ids.slice(1, 0, 4).random_(1, 39);
  const auto after = model->forward(changed).logits;
  EXPECT_TRUE(torch::allclose(before[0], after[0], 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(before[1], after[1], 1e-5, 1e-6));

  // Absent from the batch (undefined) is the same as absent from every example.
  auto without = batch;
  without.ids = torch::Tensor();
  without.present.erase("text");
  auto masked = batch;
  masked.present["text"] = torch::zeros({3}, torch::kBool);
  EXPECT_TRUE(torch::allclose(model->forward(without).logits, model->forward(masked).logits, 1e-5, 1e-6));

  // Only audio: still an answer.
  ClassifierBatch audio_only{.mel = batch.mel, .samples = batch.samples};
  EXPECT_TRUE(torch::isfinite(model->forward(audio_only).logits).all().item<bool>());
}

TEST(FusionClassifier, RefusesAModalityItWasNotTrainedWithAndEmptyInput) {
  FusionClassifier model(small_config("concat", {"image", "text"}));
  auto batch = random_batch(model->config, 2);
  EXPECT_NE(
      test::error_of([&] { model->forward(batch); }).find("not trained with audio (it reads image, text)"),
      std::string::npos);
  EXPECT_NE(test::error_of([&] { model->forward(ClassifierBatch{}); }).find("no input given"),
            std::string::npos);
  batch.mel = torch::Tensor();
  batch.present["image"] = torch::tensor({true, false});
  batch.present["text"] = torch::tensor({true, false});
  EXPECT_NE(test::error_of([&] { model->forward(batch); }).find("an example has none of its modalities"),
            std::string::npos);
  EXPECT_NE(test::error_of([] {
              FusionClassifier(small_config("concat", {"image", "smell"}));
            }).find("smell"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { FusionClassifier(small_config("mean", {"image"})); }).find("unknown fusion"),
            std::string::npos);
}

TEST(FusionClassifier, LateFusionsPredictWithoutAHead) {
  FusionClassifier late(small_config("late", {"image", "text"}));
  EXPECT_FALSE(late->head);
  EXPECT_EQ(late->config.fusion.method, "late-mean");
  auto batch = random_batch(late->config, 2);
  batch.mel = torch::Tensor();
  auto out = late->forward(batch);
  EXPECT_EQ(out.fused.tokens.sizes(), (std::vector<int64_t>{2, 2, 3}));  // each modality's own logits
}

TEST(FusionClassifier, SavesAndLoadsTheSameModel) {
  torch::manual_seed(1);
  auto dir = test::temp_dir("classifier");
  FusionClassifierBundle bundle{FusionClassifier(small_config("gated", {"image", "audio"})), std::nullopt};
  bundle.model->eval();
  save_fusion_classifier(dir, bundle);
  ASSERT_EQ(family_of_model(dir).model_type, "fusion_classifier");
  auto loaded = load_fusion_classifier(dir);
  EXPECT_EQ(loaded.model->config.labels, bundle.model->config.labels);
  auto batch = random_batch(bundle.model->config, 2);
  batch.ids = torch::Tensor();
  EXPECT_TRUE(torch::equal(bundle.model->forward(batch).logits, loaded.model->forward(batch).logits));
  EXPECT_THROW(family_of_model(dir / "nothing"), Error);
}

}  // namespace
}  // namespace mmlearn
