// Whisper's features against tests/fixtures/whisper_reference.py: its loader (the ffmpeg command) and
// log_mel_spectrogram (torch.stft with the mel_filters.npz banks).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../test_util.h"
#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/audio/log_mel.h"
#include "mmlearn/audio/log_mel_stream.h"
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

TEST_F(WhisperFeatures, StreamedWindowsMatchTheWholeRecordingsFeatures) {
  auto inputs = load_safetensors(root_ / "mel" / "inputs.safetensors");
  auto expected = load_safetensors(root_ / "mel" / "features_80.safetensors").at("jfk_longform");
  auto stream = audio::LogMelStream::of_samples(inputs.at("jfk"), 80);
  EXPECT_EQ(stream.total_frames(), expected.size(1));
  // Windows as transcription asks for them: increasing, overlapping, of any length.
  for (auto [first, count] :
       std::vector<std::pair<int64_t, int64_t>>{{0, 3000}, {0, 1100}, {37, 3000}, {1100, 3000}})
    EXPECT_LT(max_diff(stream.frames(first, count), expected.narrow(1, first, count)), 1e-4) << first;
  EXPECT_NE(test::error_of([&] { stream.frames(10, 5); }).find("in order"), std::string::npos);
  EXPECT_NE(test::error_of([&] { stream.frames(4000, 200); }).find("outside"), std::string::npos);
}

TEST(LogMelStream, TenMinutesInBoundedMemoryWithTheSameFrames) {
  // Ten minutes of a tone whose loudness swells and fades, so that the global maximum matters.
  const int64_t n = 10 * 60 * 16000;
  auto t = torch::arange(n, torch::kDouble) / 16000.0;
  auto audio =
      (0.5 * torch::sin(2 * M_PI * 0.003 * t).pow(2) * torch::sin(2 * M_PI * 440 * t)).to(torch::kFloat);
  auto whole = audio::log_mel_spectrogram(audio, 80, audio::whisper::chunk_samples);
  auto stream = audio::LogMelStream::of_samples(audio, 80);
  ASSERT_EQ(stream.total_frames(), whole.size(1));
  int64_t most_buffered = 0;
  double worst = 0;
  for (int64_t seek = 0; seek < stream.content_frames(); seek += 2345) {
    const int64_t count = std::min<int64_t>(3000, stream.content_frames() - seek);
    worst = std::max(worst, max_diff(stream.frames(seek, count), whole.narrow(1, seek, count)));
    most_buffered = std::max(most_buffered, stream.buffered_samples());
  }
  EXPECT_LT(worst, 1e-4);
  EXPECT_LT(most_buffered, 3000 * 160 + 400 + 16000) << "the stream holds more than one window of samples";
}
