// The audio–text model: unit embeddings pooled over the audio's own positions, gradients into both towers,
// model directories that round-trip and refuse what is not theirs, and an audio tower seeded from a Whisper
// encoder.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/clap.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/models/registry.h"

using namespace mmlearn;

namespace {

text::BpeTokenizer small_tokenizer() {
  return text::train_bpe({"a red circle", "a blue star", "two green squares"}, {.vocab_size = 600});
}

ClapConfig small_config(const text::BpeTokenizer& tokenizer) {
  ClapConfig c;
  c.embed_dim = 16;
  c.audio = {.n_mels = 80, .n_ctx = 50, .width = 32, .heads = 2, .layers = 1};
  c.text = {.context_length = 16,
            .vocab_size = tokenizer.vocab_size(),
            .width = 32,
            .layers = 1,
            .heads = 2,
            .eot_token_id = tokenizer.eot_id()};
  return c;
}

}  // namespace

TEST(Clap, AudioEmbeddingsAreUnitMeansOverTheClipsOwnPositions) {
  torch::manual_seed(0);
  auto tok = small_tokenizer();
  Clap model(small_config(tok));
  model->eval();
  torch::NoGradGuard no_grad;
  auto mel = torch::randn({2, 80, 100});
  auto samples = torch::tensor(std::vector<int64_t>{3200, 16000});  // 0.2 s: 10 positions; 1 s: all 50
  auto embeds = model->encode_audio(mel, samples);
  ASSERT_EQ(embeds.sizes(), (std::vector<int64_t>{2, 16}));
  EXPECT_TRUE(torch::allclose(embeds.norm(2, -1), torch::ones({2}), 1e-5, 1e-5));

  auto features = model->audio(mel);
  auto expect_short = torch::matmul(features[0].slice(0, 0, 10).mean(0), model->audio_projection);
  auto expect_long = torch::matmul(features[1].mean(0), model->audio_projection);
  EXPECT_TRUE(torch::allclose(embeds[0], expect_short / expect_short.norm(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(embeds[1], expect_long / expect_long.norm(), 1e-5, 1e-5));
  // Each clip embeds the same alone as in a batch.
  EXPECT_TRUE(torch::allclose(model->encode_audio(mel.slice(0, 0, 1), samples.slice(0, 0, 1))[0], embeds[0],
                              1e-5, 1e-5));
}

TEST(Clap, ContrastiveLossReachesBothTowersAndTheTemperature) {
  torch::manual_seed(1);
  auto tok = small_tokenizer();
  Clap model(small_config(tok));
  auto ids = tokenize_batch(tok, {"a red circle", "a blue star", "two green squares"}, 16);
  auto loss = clip_loss(model->encode_audio(torch::randn({3, 80, 100}), torch::full({3}, 8000, torch::kLong)),
                        model->encode_text(ids), model->logit_scale);
  loss.backward();
  for (const auto& p : model->named_parameters())
    if (p.key() == "audio.conv1.weight" || p.key() == "audio_projection" ||
        p.key() == "text.token_embedding.weight" || p.key() == "logit_scale") {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
    }
}

TEST(Clap, ModelDirectoryRoundTripsAndRefusesOtherModels) {
  torch::manual_seed(2);
  auto dir = test::temp_dir("clap");
  auto tok = small_tokenizer();
  Clap model(small_config(tok));
  model->eval();
  save_clap(dir / "m", model, tok);
  EXPECT_EQ(family_of_model(dir / "m").model_type, "clap");
  EXPECT_THROW(family_of_model(dir), Error);
  auto loaded = load_clap(dir / "m");
  torch::NoGradGuard no_grad;
  auto mel = torch::randn({1, 80, 100});
  auto samples = torch::full({1}, 12000, torch::kLong);
  EXPECT_TRUE(torch::equal(loaded.model->encode_audio(mel, samples), model->encode_audio(mel, samples)));
  auto ids = tokenize_batch(tok, {"a red circle"}, 16);
  EXPECT_TRUE(torch::equal(loaded.model->encode_text(ids), model->encode_text(ids)));

  auto config = to_json(model->config);
  config["model_type"] = "clip";
  EXPECT_NE(test::error_of([&] { clap_config_from_json(config, "c.json"); }).find("not an audio–text"),
            std::string::npos);
  config = to_json(model->config);
  config["audio"]["heads"] = 3;
  EXPECT_NE(test::error_of([&] { clap_config_from_json(config, "c.json"); }).find("audio.width"),
            std::string::npos);
  config["audio"]["heads"] = "two";
  EXPECT_NE(test::error_of([&] { clap_config_from_json(config, "c.json"); }).find("\"heads\""),
            std::string::npos);
  std::filesystem::remove(dir / "m" / "merges.txt");
  EXPECT_NE(test::error_of([&] { load_clap(dir / "m"); }).find("merges.txt"), std::string::npos);
}

TEST(Clap, AudioTowerStartsFromAWhisperEncoderOfTheSameSize) {
  torch::manual_seed(3);
  auto tok = small_tokenizer();
  Clap model(small_config(tok));
  const WhisperEncoderConfig e = whisper_encoder_config(model->config.audio);
  WhisperConfig w;
  w.n_mels = e.n_mels, w.n_audio_ctx = e.n_ctx, w.n_audio_state = e.n_state, w.n_audio_head = e.n_head,
  w.n_audio_layer = e.n_layer;
  w.n_vocab = 100, w.n_text_ctx = 8, w.n_text_state = 32, w.n_text_head = 2, w.n_text_layer = 1;
  Whisper whisper(w);
  auto mel = torch::randn({1, 80, 100});
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(torch::allclose(model->audio(mel), whisper->encoder(mel)));
  load_audio_tower(model, whisper, "whisper-run");
  EXPECT_TRUE(torch::equal(model->audio(mel), whisper->encoder(mel)));

  w.n_audio_state = 64;
  Whisper wider(w);
  auto error = test::error_of([&] { load_audio_tower(model, wider, "whisper-run"); });
  EXPECT_NE(error.find("whisper-run"), std::string::npos) << error;
  EXPECT_NE(error.find("does not match"), std::string::npos) << error;
}
