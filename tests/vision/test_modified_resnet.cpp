#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../test_util.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/models/clip.h"

using namespace mmlearn;

namespace {

ClipConfig resnet_config() {
  ClipConfig c = clip_preset("clip-tiny");
  c.vision = {.image_size = 64, .width = 8, .heads = 2, .resnet_layers = {1, 2, 1, 1}};
  c.text = {.context_length = 8, .vocab_size = 50, .width = 32, .layers = 1, .heads = 2, .eot_token_id = 49};
  c.embed_dim = 16;
  return c;
}

}  // namespace

TEST(ModifiedResNet, ParametersAndStatisticsCarryOpenAIsNames) {
  Clip model(resnet_config());
  const TensorMap state = parameter_map(*model);
  for (const char* key :
       {"visual.conv1.weight", "visual.bn1.running_mean", "visual.conv3.weight", "visual.bn3.running_var",
        "visual.layer1.0.conv2.weight", "visual.layer1.0.downsample.0.weight", "visual.layer2.1.bn3.bias",
        "visual.layer2.0.downsample.1.running_var", "visual.layer4.0.conv3.weight",
        "visual.attnpool.positional_embedding", "visual.attnpool.q_proj.weight",
        "visual.attnpool.c_proj.bias"})
    EXPECT_TRUE(state.count(key)) << key;
  EXPECT_FALSE(state.count("visual.layer2.1.downsample.0.weight"));  // only where the shape changes
  // 64 px / 32 = 2x2 cells + the mean token; 32 * width channels.
  EXPECT_EQ(state.at("visual.attnpool.positional_embedding").sizes(), (std::vector<int64_t>{5, 256}));
  EXPECT_EQ(state.at("visual.attnpool.c_proj.weight").sizes(), (std::vector<int64_t>{16, 256}));
}

TEST(ModifiedResNet, EvaluationUsesRunningStatisticsSoImagesDoNotDependOnTheirBatch) {
  torch::manual_seed(0);
  Clip model(resnet_config());
  auto pixels = torch::randn({4, 3, 64, 64});
  model->train();
  auto mean_before = parameter_map(*model).at("visual.bn1.running_mean").clone();
  auto batch = model->encode_image(pixels);
  auto alone = model->encode_image(pixels.slice(0, 0, 2));
  EXPECT_FALSE(torch::allclose(batch.slice(0, 0, 2), alone, 1e-4, 1e-4));  // batch statistics in training
  EXPECT_FALSE(torch::equal(mean_before, parameter_map(*model).at("visual.bn1.running_mean")));
  model->eval();
  batch = model->encode_image(pixels);
  alone = model->encode_image(pixels.slice(0, 0, 2));
  EXPECT_TRUE(torch::allclose(batch.slice(0, 0, 2), alone, 1e-5, 1e-5));
  EXPECT_EQ(batch.sizes(), (std::vector<int64_t>{4, 16}));
  EXPECT_TRUE(torch::allclose(batch.norm(2, 1), torch::ones({4}), 1e-5, 1e-5));
}

TEST(ModifiedResNet, SavedStatisticsComeBackAndTheStepCounterIsOptional) {
  torch::manual_seed(0);
  Clip trained(resnet_config());
  trained->train();
  for (int i = 0; i < 3; ++i) trained->encode_image(torch::randn({4, 3, 64, 64}) + 0.5);
  trained->eval();
  const auto dir = test::temp_dir("resnet");
  save_parameters(*trained, dir / "model.safetensors");

  Clip loaded(resnet_config());
  load_parameters(*loaded, dir / "model.safetensors");
  loaded->eval();
  auto pixels = torch::randn({2, 3, 64, 64});
  EXPECT_TRUE(torch::equal(trained->encode_image(pixels), loaded->encode_image(pixels)));

  TensorMap without_counters = parameter_map(*trained);
  std::erase_if(without_counters, [](const auto& kv) { return kv.first.ends_with("num_batches_tracked"); });
  Clip again(resnet_config());
  load_parameters(*again, without_counters, "no counters");
  again->eval();
  EXPECT_TRUE(torch::equal(trained->encode_image(pixels), again->encode_image(pixels)));

  TensorMap without_stats = parameter_map(*trained);
  without_stats.erase("visual.bn2.running_var");
  try {
    load_parameters(*again, without_stats, "no stats");
    FAIL() << "a missing running variance must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("visual.bn2.running_var"), std::string::npos) << e.what();
  }
}

TEST(ModifiedResNet, ConfigValidationNamesTheField) {
  nlohmann::json j = to_json(resnet_config());
  EXPECT_EQ(clip_config_from_json(j, "ok.json").vision.resnet_layers, (std::vector<int64_t>{1, 2, 1, 1}));
  j["vision"]["image_size"] = 48;
  try {
    clip_config_from_json(j, "bad.json");
    FAIL() << "48 px cannot go through five halvings";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 32"), std::string::npos) << e.what();
  }
}
