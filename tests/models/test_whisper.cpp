// Parity with the published Whisper architecture: tests/fixtures/whisper_reference.py writes tiny
// random-weight models as OpenAI checkpoints (fp16 .pt) and Hugging Face directories, with the encoder
// output, teacher-forced logits, language detection and greedy / beam-search decodings its PyTorch reference
// computes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/models/whisper.h"
#include "mmlearn/models/whisper_decoding.h"
#include "mmlearn/models/whisper_import.h"
#include "mmlearn/models/whisper_transcribe.h"

using namespace mmlearn;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

class WhisperParity : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { root_ = test::whisper_fixture(); }
  void SetUp() override {
    if (!fs::exists(test::whisper_assets() / "multilingual.tiktoken")) GTEST_SKIP() << "no Whisper assets";
    ASSERT_FALSE(root_.empty()) << "tests/fixtures/whisper_reference.py failed";
    dir_ = root_ / GetParam();
    expected_ = load_safetensors(dir_ / "expected.safetensors");
    reference_ = read_json_file(root_ / "expected.json")["configs"][GetParam()];
  }
  WhisperBundle open_openai() {
    return open_whisper(dir_ / "openai.pt", {.tokenizer = test::whisper_assets() / "multilingual.tiktoken"});
  }
  static inline fs::path root_;
  fs::path dir_;
  TensorMap expected_;
  json reference_;
};

}  // namespace

TEST_P(WhisperParity, EncoderAndTeacherForcedLogitsMatchInBothFormats) {
  auto mel = expected_.at("input_features").unsqueeze(0);
  auto prompt = expected_.at("prompt_tokens").unsqueeze(0);
  for (const char* format : {"openai", "hf"}) {
    SCOPED_TRACE(format);
    WhisperBundle w = std::string(format) == "openai" ? open_openai() : open_whisper(dir_ / "hf");
    json dims = reference_["dims"];
    dims["preset"] = "custom";
    EXPECT_EQ(to_json(w.model->config), dims);
    c10::InferenceMode inference;
    auto features = w.model->encoder->forward(mel);
    EXPECT_LE(relative_error(features[0], expected_.at("encoder_output")), 1e-3);
    auto logits = w.model->decoder->forward(prompt, features)[0];
    EXPECT_LE(relative_error(logits, expected_.at("logits")), 1e-3);
    EXPECT_TRUE(torch::equal(logits.argmax(-1), expected_.at("logits").argmax(-1)));
    // The key/value cache gives the same logits one token at a time.
    WhisperKVCache cache;
    std::vector<torch::Tensor> steps = {
        w.model->decoder->forward(prompt.narrow(1, 0, 3), features, &cache)[0]};
    for (int64_t t = 3; t < prompt.size(1); ++t)
      steps.push_back(w.model->decoder->forward(prompt.narrow(1, t, 1), features, &cache)[0]);
    EXPECT_LE(relative_error(torch::cat(steps), expected_.at("logits")), 1e-3);
    // Language detection.
    auto languages = detect_language(w, features);
    EXPECT_EQ(languages[0][0].first, reference_["language_detection"]["language"].get<std::string>());
    EXPECT_NEAR(languages[0][0].second, reference_["language_detection"]["probability"].get<double>(), 1e-4);
  }
}

TEST_P(WhisperParity, GreedyAndBeamSearchWriteTheReferenceTokens) {
  auto mel = expected_.at("input_features").unsqueeze(0);
  WhisperBundle openai = open_openai();
  WhisperBundle hf = open_whisper(dir_ / "hf");
  for (const char* name :
       {"greedy_notimestamps", "greedy_timestamps", "beam5_notimestamps", "beam5_timestamps"}) {
    SCOPED_TRACE(name);
    const json& want = reference_["decoding"][name];
    WhisperDecodeOptions o{.language = "en"};
    o.without_timestamps = std::string(name).find("notimestamps") != std::string::npos;
    o.beam_size = std::string(name).rfind("beam5", 0) == 0 ? 5 : 0;
    for (WhisperBundle* w : {&openai, &hf}) {
      auto result = decode_whisper(*w, mel, o).at(0);
      EXPECT_EQ(result.tokens, to_vector(expected_.at(std::string(name) + "_tokens")));
      EXPECT_EQ(result.text, want["text"].get<std::string>());
      EXPECT_EQ(w->tokenizer.decode_with_timestamps(result.tokens),
                want["text_with_timestamps"].get<std::string>());
      EXPECT_NEAR(result.sum_logprob, want["sum_logprob"].get<double>(),
                  1e-3 * std::abs(want["sum_logprob"].get<double>()));
      EXPECT_NEAR(result.avg_logprob, want["avg_logprob"].get<double>(),
                  1e-3 * std::abs(want["avg_logprob"].get<double>()));
      EXPECT_NEAR(result.no_speech_prob, want["no_speech_prob"].get<double>(), 1e-4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, WhisperParity, ::testing::Values("tiny_80", "tiny_128"));

TEST(WhisperImport, SavedModelDirectoriesOpenWithTheSameNumbers) {
  auto root = test::whisper_fixture();
  if (root.empty()) GTEST_SKIP() << "no Whisper assets or fixture";
  auto w = open_whisper(root / "tiny_80" / "hf");
  auto dir = test::temp_dir("saved");
  save_whisper(dir, w);
  auto again = open_whisper(dir);
  auto mel = load_safetensors(root / "tiny_80" / "expected.safetensors").at("input_features").unsqueeze(0);
  WhisperDecodeOptions o{.language = "en"};
  EXPECT_EQ(decode_whisper(again, mel, o)[0].tokens, decode_whisper(w, mel, o)[0].tokens);
  EXPECT_TRUE(again.suppress_non_speech);
  w.suppress_non_speech = false;  // as a model trained here is saved
  save_whisper(dir, w);
  EXPECT_FALSE(open_whisper(dir).suppress_non_speech);
}

TEST(WhisperImport, WrongCheckpointsGetClearErrors) {
  auto dir = test::temp_dir("bad");
  auto root = test::whisper_fixture();
  // A state dict that is not Whisper's: here, a CLIP-like safetensors file.
  save_safetensors(dir / "clip.safetensors", {{"visual.proj", torch::zeros({4, 4})}});
  EXPECT_NE(test::error_of([&] {
              open_whisper(dir / "clip.safetensors");
            }).find("not an OpenAI Whisper checkpoint"),
            std::string::npos);
  write_file_atomic(dir / "config.json", R"({"model_type": "clip"})");
  EXPECT_NE(test::error_of([&] { open_whisper(dir); }).find("not a Whisper model"), std::string::npos);
  EXPECT_NE(test::error_of([&] { whisper_preset("whisper-huge"); }).find("unknown Whisper preset"),
            std::string::npos);
  if (root.empty()) return;
  // OpenAI's checkpoints carry no tokenizer: say which file to give.
  fs::copy_file(root / "tiny_80" / "openai.pt", dir / "tiny.pt");
  auto missing = test::error_of([&] { open_whisper(dir / "tiny.pt"); });
  EXPECT_NE(missing.find("--tokenizer"), std::string::npos) << missing;
  // The English-only vocabulary does not fit a multilingual model.
  auto mismatch = test::error_of(
      [&] { open_whisper(dir / "tiny.pt", {.tokenizer = test::whisper_assets() / "gpt2.tiktoken"}); });
  EXPECT_NE(mismatch.find("the tokenizer has 51864 tokens but the model 51865"), std::string::npos)
      << mismatch;
}

TEST_P(WhisperParity, LongFormTranscriptionMatchesTheReferenceSegmentBySegment) {
  WhisperBundle w = open_whisper(dir_ / "hf");
  for (const auto& [name, want] : reference_["transcribe"].items()) {
    SCOPED_TRACE(name);
    const fs::path file =
        name == "jfk" ? test::whisper_assets() / "jfk.flac" : root_ / "audio" / "long_75s.wav";
    TranscribeOptions o;
    o.temperatures = {0.0};  // as the reference: one temperature, so no random fallback
    if (!want["language_given"].is_null()) o.decode.language = want["language_given"].get<std::string>();
    Transcript t = transcribe(w, file, o);
    EXPECT_EQ(t.language, want["language"].get<std::string>());
    EXPECT_EQ(t.text, want["text"].get<std::string>());
    ASSERT_EQ(t.segments.size(), want["segments"].size());
    for (size_t i = 0; i < t.segments.size(); ++i) {
      const auto& got = t.segments[i];
      const auto& s = want["segments"][i];
      EXPECT_EQ(got.seek, s["seek"].get<int64_t>()) << i;
      EXPECT_NEAR(got.start, s["start"].get<double>(), 1e-9) << i;
      EXPECT_NEAR(got.end, s["end"].get<double>(), 1e-9) << i;
      EXPECT_EQ(got.text, s["text"].get<std::string>()) << i;
      EXPECT_EQ(got.tokens, s["tokens"].get<std::vector<int64_t>>()) << i;
      EXPECT_NEAR(got.avg_logprob, s["avg_logprob"].get<double>(),
                  1e-3 * std::abs(s["avg_logprob"].get<double>()));
      EXPECT_NEAR(got.no_speech_prob, s["no_speech_prob"].get<double>(), 1e-4);
    }
  }
}

// Training runs the encoder's convolutions as matrix products (libtorch 1.13's oneDNN convolution backward
// gives wrong weight gradients behind the permute): same outputs as the convolutions, and gradients equal to
// a float64 computation, which never takes the oneDNN path.
TEST(WhisperEncoder, TrainingPathMatchesTheConvolutionsAndFloat64Gradients) {
  torch::manual_seed(4);
  WhisperEncoder encoder(
      WhisperEncoderConfig{.n_mels = 80, .n_ctx = 200, .n_state = 64, .n_head = 2, .n_layer = 1});
  auto mel = torch::randn({4, 80, 400});
  auto probe = torch::randn({64, 64});
  torch::Tensor inference;
  {
    torch::NoGradGuard no_grad;
    inference = encoder(mel);
  }
  auto training = encoder(mel);
  EXPECT_LT((training - inference).abs().max().item<double>(), 1e-4);
  torch::matmul(training, probe).square().mean().backward();
  auto conv1_grad = encoder->conv1->weight.grad().clone(), conv2_grad = encoder->conv2->weight.grad().clone();

  // The reference: the encoder's forward written out with the convolutions themselves, in float64.
  encoder->zero_grad();
  encoder->to(torch::kDouble);
  namespace F = torch::nn::functional;
  auto x = torch::gelu(F::conv1d(mel.to(torch::kDouble), encoder->conv1->weight,
                                 F::Conv1dFuncOptions().bias(encoder->conv1->bias).padding(1)));
  x = torch::gelu(F::conv1d(x, encoder->conv2->weight,
                            F::Conv1dFuncOptions().bias(encoder->conv2->bias).stride(2).padding(1)))
          .permute({0, 2, 1}) +
      encoder->positional_embedding;
  x = encoder->ln_post(encoder->blocks[0]->as<WhisperBlock>()->forward(x, {}, {}, nullptr, 0));
  torch::matmul(x, probe.to(torch::kDouble)).square().mean().backward();
  EXPECT_LT(relative_error(conv1_grad, encoder->conv1->weight.grad().to(torch::kFloat)), 1e-4);
  EXPECT_LT(relative_error(conv2_grad, encoder->conv2->weight.grad().to(torch::kFloat)), 1e-4);
}
