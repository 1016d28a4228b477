#include "mmlearn/audio/log_mel_stream.h"

#include <torch/torch.h>

#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/error.h"

namespace mmlearn::audio {

namespace {
constexpr int64_t kHop = whisper::hop_length, kHalf = whisper::n_fft / 2,
                  kChunkFrames = whisper::chunk_frames;
}

LogMelStream::LogMelStream(std::function<Reader()> open, int64_t n_mels, int64_t padding_frames)
    : open_(std::move(open)), n_mels_(n_mels), padding_frames_(padding_frames) {
  check(padding_frames >= 0, "negative padding");
  // Pass 1: the global maximum, window by window over the frames that reach real samples (the others see
  // only silence, whose log is the floor of -10).
  reader_ = open_();
  for (int64_t first = 0;; first += kChunkFrames) {
    fill_until((first + kChunkFrames) * kHop + kHalf);
    int64_t count = kChunkFrames;
    if (exhausted_) count = std::min(count, (samples_ + kHalf) / kHop + 1 - first);
    if (count <= 0) break;
    max_log_ = std::max(max_log_, power(first, count).max().clamp_min(1e-10).log10().item<double>());
    discard_before((first + count) * kHop - kHalf);
  }
  // Pass 2 starts over.
  reader_ = open_();
  buffer_.clear();
  buffer_start_ = 0;
  exhausted_ = false;
}

LogMelStream LogMelStream::of_file(const std::filesystem::path& path, int64_t n_mels,
                                   int64_t padding_frames) {
  return LogMelStream(
      [path]() -> Reader {
        auto decoder = std::make_shared<AudioDecoder>(path);
        return [decoder](std::vector<float>& out, int64_t max) { return decoder->read(out, max); };
      },
      n_mels, padding_frames);
}

LogMelStream LogMelStream::of_samples(torch::Tensor samples, int64_t n_mels, int64_t padding_frames) {
  check(samples.dim() == 1, "audio must be one channel of samples, got shape ", samples.sizes());
  auto data = std::make_shared<torch::Tensor>(samples.to(torch::kFloat).contiguous());
  return LogMelStream(
      [data]() -> Reader {
        auto position = std::make_shared<int64_t>(0);
        return [data, position](std::vector<float>& out, int64_t max) {
          const int64_t n = std::min(max, data->numel() - *position);
          const float* p = data->data_ptr<float>() + *position;
          out.insert(out.end(), p, p + n);
          *position += n;
          return n;
        };
      },
      n_mels, padding_frames);
}

void LogMelStream::discard_before(int64_t sample) {
  const int64_t drop = std::min<int64_t>(sample - buffer_start_, static_cast<int64_t>(buffer_.size()));
  if (drop <= 0) return;
  buffer_.erase(buffer_.begin(), buffer_.begin() + drop);
  buffer_start_ += drop;
}

void LogMelStream::fill_until(int64_t sample_end) {
  std::vector<float> chunk;
  while (!exhausted_ && buffer_start_ + static_cast<int64_t>(buffer_.size()) < sample_end) {
    chunk.clear();
    const int64_t n = reader_(chunk, std::max<int64_t>(sample_end - buffer_start_ - buffer_.size(), 16000));
    if (n == 0) {
      exhausted_ = true;
      samples_ = buffer_start_ + static_cast<int64_t>(buffer_.size());
    }
    buffer_.insert(buffer_.end(), chunk.begin(), chunk.end());
  }
}

torch::Tensor LogMelStream::power(int64_t first, int64_t count) {
  // Frame f covers samples [160 f - 200, 160 f + 200) of the audio followed by silence, mirrored at the start
  // as torch.stft(center=True, pad_mode="reflect") does.
  const int64_t start = first * kHop - kHalf, length = count * kHop + 2 * kHalf;
  auto x = torch::empty({length}, torch::kFloat);
  float* p = x.data_ptr<float>();
  check(start >= 0 || buffer_start_ == 0, "log-mel frames requested out of order");
  const int64_t end = buffer_start_ + static_cast<int64_t>(buffer_.size());
  for (int64_t i = 0; i < length; ++i) {
    int64_t j = start + i;
    if (j < 0) j = -j;
    p[i] = j >= buffer_start_ && j < end ? buffer_[static_cast<size_t>(j - buffer_start_)] : 0.0f;
  }
  return frames_mel_power(x, count, n_mels_);
}

torch::Tensor LogMelStream::frames(int64_t first, int64_t count) {
  check(first >= last_first_, "log-mel frames must be read in order (asked for ", first, " after ",
        last_first_, ")");
  check(count > 0 && first + count <= total_frames(), "frames ", first, "..", first + count,
        " are outside the ", total_frames(), " frames of this audio");
  last_first_ = first;
  fill_until((first + count) * kHop + kHalf);
  discard_before(first * kHop - kHalf);  // no later frame needs them
  return log_mel_from_power(power(first, count), max_log_);
}

}  // namespace mmlearn::audio
