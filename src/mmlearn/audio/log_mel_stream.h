// Whisper's long-form features in bounded memory. Whisper computes the log-mel of a whole recording (plus 30
// s of silence) at once and clamps it to 8 below its global maximum; this gives the same frames window by
// window: a first pass over the audio finds the maximum, a second serves any run of frames from a sliding
// buffer of samples (each frame sees the 200 samples either side that the one big STFT would give it).
// Memory stays at about one window, however long the recording.
//
//   mmlearn::audio::LogMelStream mel = mmlearn::audio::LogMelStream::of_file("talk.m4a", 80);
//   torch::Tensor window = mel.frames(seek, 3000);   // [80, 3000]; seek never goes back
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <functional>
#include <vector>

namespace mmlearn::audio {

class LogMelStream {
 public:
  // Appends up to `max` samples (16 kHz mono) to `out`; returns how many, 0 at the end.
  using Reader = std::function<int64_t(std::vector<float>& out, int64_t max)>;

  // `open` starts the audio from its beginning; it is called twice (the maximum pass, then the frames).
  // `padding_frames` of silence follow the audio (Whisper pads by one 30 s window: 3000).
  LogMelStream(std::function<Reader()> open, int64_t n_mels, int64_t padding_frames = 3000);
  static LogMelStream of_file(const std::filesystem::path& path, int64_t n_mels,
                              int64_t padding_frames = 3000);
  static LogMelStream of_samples(torch::Tensor samples, int64_t n_mels, int64_t padding_frames = 3000);

  int64_t samples() const { return samples_; }
  int64_t content_frames() const { return samples_ / 160; }  // frames before the 30 s of padding
  int64_t total_frames() const { return content_frames() + padding_frames_; }
  double max_log() const { return max_log_; }
  int64_t buffered_samples() const { return static_cast<int64_t>(buffer_.size()); }  // memory in use

  // Log-mel frames [n_mels, count] from `first` on (first may not decrease between calls; frames past
  // total_frames() are an error).
  torch::Tensor frames(int64_t first, int64_t count);

 private:
  torch::Tensor power(int64_t first, int64_t count);  // mel power of frames, from buffer_
  void fill_until(int64_t sample_end);                // buffer_ covers samples up to sample_end
  void discard_before(int64_t sample);

  std::function<Reader()> open_;
  Reader reader_;
  int64_t n_mels_, padding_frames_;
  int64_t samples_ = 0;
  double max_log_ = -10.0;
  std::vector<float> buffer_;  // samples from buffer_start_ on
  int64_t buffer_start_ = 0;
  bool exhausted_ = false;
  int64_t last_first_ = 0;
};

}  // namespace mmlearn::audio
