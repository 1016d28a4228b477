// Whisper's features against tests/fixtures/whisper_reference.py: its loader (the ffmpeg command) and
// log_mel_spectrogram (torch.stft with the mel_filters.npz banks).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../test_util.h"
#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/safetensors.h"

using namespace mmlearn;
namespace fs = std::filesystem;

namespace {

torch::Tensor samples_tensor(std::vector<float> v) {
  return torch::from_blob(v.data(), {static_cast<int64_t>(v.size())}, torch::kFloat).clone();
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

class WhisperFeatures : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { root_ = test::whisper_fixture(); }
  void SetUp() override {
    if (!fs::exists(test::whisper_assets() / "jfk.flac")) GTEST_SKIP() << "no " << test::whisper_assets();
    ASSERT_FALSE(root_.empty()) << "tests/fixtures/whisper_reference.py failed";
  }
  static inline fs::path root_;
};

}  // namespace

TEST_F(WhisperFeatures, AudioLoadsAsWhispersFfmpegCommandLoadsIt) {
  auto jfk = load_safetensors(root_ / "audio" / "jfk_16k.safetensors").at("audio");
  auto ours = samples_tensor(audio::load_audio(test::whisper_assets() / "jfk.flac"));
  ASSERT_EQ(ours.sizes(), jfk.sizes());
  EXPECT_EQ(max_diff(ours, jfk), 0.0);
  for (const char* name : {"chirp_44k1_stereo_s16", "tones_8k_mono_f32", "stereo_16k_s16", "mono_16k_s16"}) {
    auto expected =
        load_safetensors(root_ / "audio" / (std::string(name) + "_16k.safetensors")).begin()->second;
    auto got = samples_tensor(audio::load_audio(root_ / "audio" / (std::string(name) + ".wav")));
    ASSERT_EQ(got.sizes(), expected.sizes()) << name;
    EXPECT_EQ(max_diff(got, expected), 0.0) << name;
  }
}

TEST_F(WhisperFeatures, MelFiltersMatchWhispersBanks) {
  auto filters = load_safetensors(root_ / "mel" / "filters.safetensors");
  for (int64_t n : {80, 128}) {
    auto expected = filters.at("mel_" + std::to_string(n));
    auto ours = audio::mel_filters(n);
    ASSERT_EQ(ours.sizes(), expected.sizes());
    EXPECT_LT(max_diff(ours, expected), 1e-7) << n;
  }
}

TEST_F(WhisperFeatures, LogMelMatchesTheReferenceWithin1e4) {
  auto inputs = load_safetensors(root_ / "mel" / "inputs.safetensors");
  for (int64_t n : {80, 128}) {
    auto expected = load_safetensors(root_ / "mel" / ("features_" + std::to_string(n) + ".safetensors"));
    for (const auto& [name, audio] : inputs) {
      auto ours = audio::log_mel_spectrogram(audio::pad_or_trim(audio), n);
      const auto& want = expected.at(name);
      ASSERT_EQ(ours.sizes(), want.sizes()) << name;
      EXPECT_LT(max_diff(ours, want), 1e-4) << name << " " << n << " bins";
    }
    // Long-form: the whole clip with 30 s of padding, as transcribe() computes it.
    auto longform = audio::log_mel_spectrogram(inputs.at("jfk"), n, audio::whisper::chunk_samples);
    ASSERT_EQ(longform.sizes(), expected.at("jfk_longform").sizes());
    EXPECT_LT(max_diff(longform, expected.at("jfk_longform")), 1e-4);
  }
}
