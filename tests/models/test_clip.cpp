#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../test_util.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/clip.h"

using namespace mmlearn;

namespace {
ClipConfig small_config() {
  ClipConfig c = clip_preset("clip-tiny");
  c.vision = {.image_size = 32, .patch_size = 8, .width = 32, .layers = 2, .heads = 2};
  c.text = {.context_length = 8, .vocab_size = 50, .width = 32, .layers = 2, .heads = 2, .eot_token_id = 49};
  c.embed_dim = 16;
  return c;
}
}  // namespace

TEST(Clip, EncodersGiveUnitVectorsOfTheEmbeddingSize) {
  torch::manual_seed(0);
  Clip model(small_config());
  auto pixels = torch::randn({3, 3, 32, 32});
  auto ids = torch::randint(0, 49, {2, 8});
  ids.index_put_({torch::indexing::Slice(), 5}, 49);
  auto img = model->encode_image(pixels), txt = model->encode_text(ids);
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(txt.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_TRUE(torch::allclose(img.norm(2, 1), torch::ones({3}), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(txt.norm(2, 1), torch::ones({2}), 1e-5, 1e-5));
}

TEST(Clip, TextPoolsAtEndTokenAndIgnoresWhatFollows) {
  torch::manual_seed(0);
  Clip model(small_config());
  model->eval();
  auto ids = torch::tensor({{3, 7, 49, 0, 0, 0, 0, 0}});
  auto other = torch::tensor({{3, 7, 49, 11, 12, 13, 14, 15}});  // causal: tokens after the end cannot matter
  auto changed = torch::tensor({{3, 8, 49, 0, 0, 0, 0, 0}});
  auto a = model->encode_text(ids), b = model->encode_text(other), c = model->encode_text(changed);
  EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(a, c, 1e-3, 1e-3));
  auto out = model->text->forward(ids);
  EXPECT_EQ(out.mask.sum().item<int64_t>(), 3);
}

TEST(Clip, WrongInputShapesAreRejected) {
  Clip model(small_config());
  EXPECT_THROW(model->encode_image(torch::randn({1, 3, 64, 64})), c10::Error);
  EXPECT_THROW(model->encode_text(torch::zeros({1, 9}, torch::kLong)), c10::Error);
}

TEST(Clip, LossIsLowForMatchedPairsAndGradientsReachBothTowers) {
  auto e = torch::nn::functional::normalize(torch::randn({8, 16}),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto scale = torch::tensor(std::log(100.0));
  auto matched = clip_loss(e, e, scale).item<double>();
  auto shuffled = clip_loss(e, e.roll(1, 0), scale).item<double>();
  EXPECT_LT(matched, 0.1);
  EXPECT_GT(shuffled, 1.0);

  torch::manual_seed(0);
  Clip model(small_config());
  auto ids = torch::randint(0, 49, {4, 8});
  ids.index_put_({torch::indexing::Slice(), 7}, 49);
  auto loss = clip_loss(model->encode_image(torch::randn({4, 3, 32, 32})), model->encode_text(ids),
                        model->logit_scale);
  loss.backward();
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
}

// NegCLIP: a hard negative is one more caption each image must rank below its own, and no image's caption.
TEST(Clip, HardNegativesAreCaptionsNoImageOwns) {
  namespace F = torch::nn::functional;
  torch::manual_seed(0);
  const auto unit = [](const torch::Tensor& x) { return F::normalize(x, F::NormalizeFuncOptions().dim(1)); };
  const auto images = unit(torch::randn({4, 16}, torch::kDouble)),
             texts = unit(images + 0.05 * torch::randn({4, 16}, torch::kDouble));
  const auto scale = torch::tensor(std::log(20.0), torch::kDouble);
  const double plain = clip_loss(images, texts, scale).item<double>();
  // Image i's term: log-sum-exp over every caption and the negatives, less its own caption's logit; the
  // captions' terms (the other half) see only the images.
  const auto logits = 20.0 * torch::matmul(images, texts.t());
  const auto expected = [&](const torch::Tensor& negatives) {
    const auto row = torch::cat({logits, 20.0 * torch::matmul(images, negatives.t())}, 1);
    const auto image_terms = (torch::logsumexp(row, 1) - logits.diagonal()).mean();
    const auto text_terms = (torch::logsumexp(logits.t(), 1) - logits.diagonal()).mean();
    return 0.5 * (image_terms + text_terms).item<double>();
  };
  // A negative the first image matches as well as its own caption costs about log 2 in its term.
  const auto twin = texts.slice(0, 0, 1);
  const double with_twin = clip_loss(images, texts, scale, 0, nullptr, twin).item<double>();
  EXPECT_NEAR(with_twin, expected(twin), 1e-12);
  EXPECT_NEAR(with_twin - plain, 0.5 / 4 * std::log(2.0), 0.01);
  // Negatives no image resembles change almost nothing.
  const auto far = -images.slice(0, 0, 2);
  EXPECT_NEAR(clip_loss(images, texts, scale, 0, nullptr, far).item<double>(), expected(far), 1e-12);
  EXPECT_NEAR(clip_loss(images, texts, scale, 0, nullptr, far).item<double>(), plain, 1e-4);
}

TEST(Clip, ParameterNamesFollowOpenAiLayout) {
  Clip model(small_config());
  auto params = model->named_parameters();
  for (const char* key :
       {"visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding",
        "visual.transformer.resblocks.0.attn.in_proj_weight",
        "visual.transformer.resblocks.1.mlp.c_fc.weight", "visual.ln_post.bias", "visual.proj",
        "text.token_embedding.weight", "text.ln_final.weight", "text.text_projection", "logit_scale"})
    EXPECT_TRUE(params.contains(key)) << key;
}

TEST(Clip, CheckpointRoundTripAndStrictLoading) {
  auto dir = test::temp_dir("ckpt");
  torch::manual_seed(0);
  Clip a(small_config());
  save_parameters(*a, dir / "m.safetensors");
  torch::manual_seed(1);
  Clip b(small_config());
  load_parameters(*b, dir / "m.safetensors");
  for (const auto& p : a->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()]));

  ClipConfig wider = small_config();
  wider.embed_dim = 24;
  Clip c(wider);
  try {
    load_parameters(*c, dir / "m.safetensors");
    FAIL() << "shape mismatch accepted";
  } catch (const Error& e) {
    // Both projections changed shape; the first one found (in name order) is named with both shapes.
    EXPECT_NE(std::string(e.what()).find("\"text.text_projection\" has shape [32, 16] but the model expects "
                                         "[32, 24]"),
              std::string::npos)
        << e.what();
  }
  auto tensors = parameter_map(*a);
  tensors.erase("logit_scale");
  EXPECT_THROW(load_parameters(*b, tensors, "x"), Error);
  tensors = parameter_map(*a);
  tensors["extra"] = torch::zeros({1});
  EXPECT_THROW(load_parameters(*b, tensors, "x"), Error);
}

TEST(Clip, ConfigRoundTripsAndBadConfigsFail) {
  ClipConfig c = clip_preset("clip-vit-b-32");
  ClipConfig back = clip_config_from_json(to_json(c), "config.json");
  EXPECT_EQ(to_json(back), to_json(c));
  auto j = to_json(c);
  j["activation"] = "swish";
  try {
    clip_config_from_json(j, "config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("activation"), std::string::npos);
  }
  j = to_json(c);
  j["vision"]["patch_size"] = 33;
  EXPECT_THROW(clip_config_from_json(j, "config.json"), Error);
  j = to_json(c);
  j["embed_dim"] = "big";
  EXPECT_THROW(clip_config_from_json(j, "config.json"), Error);
  EXPECT_THROW(clip_preset("clip-huge"), Error);
}
