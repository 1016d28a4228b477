// A Whisper-architecture recognizer trained from scratch on a few spoken shapes captions: the vocabulary is
// learned, the loss falls (with the auxiliary CTC loss on), and the model directory it writes transcribes
// with the same code as any Whisper.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/models/whisper_decoding.h"
#include "mmlearn/models/whisper_transcribe.h"
#include "mmlearn/text/whisper_tokenizer.h"
#include "mmlearn/train/trainer.h"

using namespace mmlearn;
namespace fs = std::filesystem;

TEST(WhisperVocabulary, LearnsWholeCaptionWordsAndEncodesWithThem) {
  std::vector<std::string> texts;
  for (int i = 0; i < 50; ++i)
    texts.push_back(i % 2 ? " a small red circle" : " a large blue star left of a square");
  auto ranks = text::train_byte_ranks(texts, 300);
  ASSERT_GT(ranks.size(), 256u);
  EXPECT_EQ(ranks, text::train_byte_ranks(texts, 300));  // deterministic
  auto tok = text::WhisperTokenizer::from_ranks(ranks, 1, "test");
  EXPECT_EQ(tok.encode(" a small red circle").size(), 4u);  // one token per word
  EXPECT_EQ(tok.decode(tok.encode(" a large blue star")), " a large blue star");
  EXPECT_EQ(tok.languages(), std::vector<std::string>{"en"});
}

TEST(WhisperTrainer, LossFallsAndTheModelTranscribes) {
  auto dir = test::temp_dir("run");
  data::generate_shapes(dir / "data",
                        {.n_train = 48, .n_test = 8, .seed = 2, .image_size = 32, .audio = true});
  TrainOptions o{.preset = "whisper-tiny-shapes",
                 .data = dir / "data",
                 .out = dir / "model",
                 .steps = 60,
                 .batch_size = 4,
                 .precision = "fp32",
                 .eval_samples = 4,
                 .vocab_size = 300};
  // One thread: parallel reductions sum in a varying order, and in 60 small steps that decides whether the
  // loss has left its first plateau; on one thread the run is the same every time.
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  auto r = train(o);
  torch::set_num_threads(threads);
  EXPECT_EQ(r.steps, 60);
  ASSERT_TRUE(r.final_eval.contains("wer"));
  EXPECT_EQ(r.final_eval["samples"], 4);
  std::ifstream metrics(o.out / "metrics.jsonl");
  // The decoder's cross-entropy, apart from the auxiliary CTC loss (which falls fast from a large start).
  std::vector<double> losses;
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("loss")) continue;
    ASSERT_TRUE(j.contains("ctc")) << line;
    losses.push_back(j["ce"].get<double>());
  }
  ASSERT_EQ(losses.size(), 60u);
  double last = 0;
  for (size_t i = 50; i < 60; ++i) last += losses[i] / 10;
  EXPECT_LT(last, losses.front() - 0.5) << "the loss did not fall";
  // The written directory opens as any Whisper model and transcribes a file.
  auto whisper = open_whisper(o.out);
  EXPECT_FALSE(whisper.multilingual);
  EXPECT_FALSE(whisper.suppress_non_speech);  // its transcripts may hold ":" and the like
  EXPECT_FALSE(whisper.timestamps);
  EXPECT_EQ(whisper.model->config.n_audio_ctx, 400);
  Transcript t = transcribe(whisper, dir / "data" / "audio" / "test" / "000000.wav", {});
  EXPECT_EQ(t.language, "en");
  EXPECT_GT(t.duration, 0.5);
  for (const auto& segment : t.segments)  // decoded with <|notimestamps|>, as it was trained
    for (int64_t token : segment.tokens) EXPECT_LT(token, whisper.tokenizer.timestamp_begin);
  // dump gives the features of the model's own 8 s window.
  auto dumped =
      dump_whisper(whisper, dir / "data" / "audio" / "test" / "000000.wav", {whisper.tokenizer.sot});
  EXPECT_EQ(dumped.at("input_features").sizes(), (std::vector<int64_t>{80, 800}));
  EXPECT_EQ(dumped.at("encoder_output").sizes(), (std::vector<int64_t>{400, 192}));
  EXPECT_EQ(dumped.at("logits").size(0), 1);
}
