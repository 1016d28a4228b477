#include "mmlearn/audio/log_mel.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <mutex>
#include <vector>

#include "mmlearn/core/error.h"

namespace mmlearn::audio {

namespace {

// Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per factor 6.4).
constexpr double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
const double log_step = std::log(6.4) / 27.0;

double hz_to_mel(double hz) {
  return hz < min_log_hz ? hz / f_sp : min_log_mel + std::log(hz / min_log_hz) / log_step;
}
double mel_to_hz(double mel) {
  return mel < min_log_mel ? f_sp * mel : min_log_hz * std::exp(log_step * (mel - min_log_mel));
}

// A filter bank row by its nonzero run: the first FFT bin and the weights from there.
struct SparseFilters {
  std::vector<int64_t> first;
  std::vector<std::vector<float>> weights;
};

const SparseFilters& sparse_filters(int64_t n_mels) {
  static std::mutex mutex;
  static std::map<int64_t, SparseFilters> table;
  std::lock_guard<std::mutex> lock(mutex);
  auto& s = table[n_mels];
  if (s.first.empty()) {
    const auto dense = whisper_mel_filters(n_mels);
    auto f = dense.accessor<float, 2>();
    for (int64_t m = 0; m < dense.size(0); ++m) {
      int64_t lo = 0, hi = dense.size(1);
      while (lo < hi && f[m][lo] == 0) ++lo;
      while (hi > lo && f[m][hi - 1] == 0) --hi;
      s.first.push_back(lo);
      s.weights.emplace_back();
      for (int64_t k = lo; k < hi; ++k) s.weights.back().push_back(f[m][k]);
    }
  }
  return s;
}

const torch::Tensor& hann_window() {
  static const torch::Tensor window = torch::hann_window(whisper::n_fft, torch::kFloat);  // periodic
  return window;
}

}  // namespace

torch::Tensor mel_filters(int64_t n_mels, int64_t n_fft, int64_t sample_rate) {
  check(n_mels > 0 && n_mels <= 512 && n_fft > 1 && sample_rate > 0, "invalid mel filter bank: ", n_mels,
        " bins, n_fft ", n_fft, ", ", sample_rate, " Hz");
  const int64_t bins = n_fft / 2 + 1;
  std::vector<double> fft_hz(static_cast<size_t>(bins)), mel_hz(static_cast<size_t>(n_mels + 2));
  for (int64_t k = 0; k < bins; ++k)
    fft_hz[static_cast<size_t>(k)] =
        static_cast<double>(sample_rate) / 2 * static_cast<double>(k) / (bins - 1);
  const double top = hz_to_mel(sample_rate / 2.0);
  for (int64_t i = 0; i < n_mels + 2; ++i)
    mel_hz[static_cast<size_t>(i)] =
        mel_to_hz(top * static_cast<double>(i) / static_cast<double>(n_mels + 1));
  auto filters = torch::zeros({n_mels, bins}, torch::kFloat);
  auto f = filters.accessor<float, 2>();
  for (int64_t m = 0; m < n_mels; ++m) {
    const double lo = mel_hz[static_cast<size_t>(m)], mid = mel_hz[static_cast<size_t>(m + 1)],
                 hi = mel_hz[static_cast<size_t>(m + 2)];
    const double norm = 2.0 / (hi - lo);  // equal area per filter
    for (int64_t k = 0; k < bins; ++k) {
      const double hz = fft_hz[static_cast<size_t>(k)];
      const double rising = (hz - lo) / (mid - lo), falling = (hi - hz) / (hi - mid);
      f[m][k] = static_cast<float>(std::max(0.0, std::min(rising, falling)) * norm);
    }
  }
  return filters;
}

const torch::Tensor& whisper_mel_filters(int64_t n_mels) {
  static std::mutex mutex;
  static std::map<int64_t, torch::Tensor> filters;
  std::lock_guard<std::mutex> lock(mutex);
  auto& f = filters[n_mels];
  if (!f.defined()) f = mel_filters(n_mels);
  return f;
}

torch::Tensor pad_or_trim(const torch::Tensor& audio, int64_t length) {
  const int64_t n = audio.size(-1);
  if (n > length) return audio.narrow(-1, 0, length);
  if (n < length) return torch::constant_pad_nd(audio, {0, length - n});
  return audio;
}

torch::Tensor frames_mel_power(const torch::Tensor& x, int64_t frames, int64_t n_mels) {
  constexpr int64_t hop = whisper::hop_length, n_fft = whisper::n_fft, bins = n_fft / 2 + 1;
  check(x.dim() == 1 && x.size(0) >= (frames - 1) * hop + n_fft, "too few samples for ", frames, " frames");
  const auto samples = x.to(torch::kFloat).contiguous();
  const SparseFilters& filters = sparse_filters(n_mels);
  auto mel = torch::empty({n_mels, frames}, torch::kFloat);
  float* out = mel.data_ptr<float>();
  // One parallel region for the whole window, each thread with its own run of frames: libtorch's FFT runs on
  // one thread, and on small machines waking threads for each of a dozen small ops costs more than the work.
  // Each mel filter spans a few FFT bins, so the filter bank is applied sparsely.
  at::parallel_for(0, frames, 64, [&](int64_t begin, int64_t end) {
    auto segment = samples.narrow(0, begin * hop, (end - begin - 1) * hop + n_fft);
    auto spectrum = torch::stft(segment, n_fft, hop, n_fft, hann_window(), /*center=*/false, "reflect",
                                /*normalized=*/false, /*onesided=*/true, /*return_complex=*/true);
    const auto parts = torch::view_as_real(spectrum);  // [bins, frames, 2]
    const float* in = parts.data_ptr<float>();
    const int64_t bin_stride = parts.stride(0), frame_stride = parts.stride(1), imag = parts.stride(2);
    std::vector<float> power(bins);
    for (int64_t f = 0; f < end - begin; ++f) {
      for (int64_t b = 0; b < bins; ++b) {
        const float re = in[f * frame_stride + b * bin_stride],
                    im = in[f * frame_stride + b * bin_stride + imag];
        power[static_cast<size_t>(b)] = re * re + im * im;
      }
      for (int64_t m = 0; m < n_mels; ++m) {
        const auto& w = filters.weights[static_cast<size_t>(m)];
        const float* p = power.data() + filters.first[static_cast<size_t>(m)];
        float sum = 0;
        for (size_t k = 0; k < w.size(); ++k) sum += w[k] * p[k];
        out[m * frames + begin + f] = sum;
      }
    }
  });
  return mel;
}

torch::Tensor mel_power(const torch::Tensor& audio, int64_t n_mels) {
  check(audio.dim() == 1, "audio must be one channel of samples, got shape ", audio.sizes());
  check(audio.size(0) > whisper::n_fft / 2, "audio of ", audio.size(0), " samples is too short for a ",
        whisper::n_fft, "-sample window; pad it (pad_or_trim)");
  // As torch.stft(center=True, pad_mode="reflect"): mirror half a window at each end. Whisper drops the last
  // frame, so that frames = samples / hop.
  auto padded = torch::reflection_pad1d(audio.to(torch::kFloat).view({1, 1, -1}),
                                        {whisper::n_fft / 2, whisper::n_fft / 2});
  return frames_mel_power(padded.view({-1}), audio.size(0) / whisper::hop_length, n_mels);
}

torch::Tensor log_mel_from_power(const torch::Tensor& power, double max_log) {
  auto out = power.contiguous().clone();
  const int64_t n = out.numel();
  const float floor = static_cast<float>(max_log - 8.0);
  float* p = out.data_ptr<float>();
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    out.view({-1}).narrow(0, begin, end - begin).clamp_min_(1e-10).log10_();  // libtorch's vectorized log10
    for (int64_t i = begin; i < end; ++i) p[i] = (std::max(p[i], floor) + 4.0f) / 4.0f;
  });
  return out;
}

torch::Tensor log_mel_spectrogram(const torch::Tensor& audio, int64_t n_mels, int64_t padding) {
  check(padding >= 0, "negative padding");
  auto x = padding > 0 ? torch::constant_pad_nd(audio, {0, padding}) : audio;
  auto power = mel_power(x, n_mels);
  return log_mel_from_power(power, power.max().clamp_min(1e-10).log10().item<double>());
}

torch::Tensor window_features(const torch::Tensor& audio, int64_t n_mels, int64_t window_frames) {
  const int64_t window_samples = window_frames * whisper::hop_length;
  auto clip = audio.size(0) > window_samples ? audio.narrow(0, 0, window_samples) : audio;
  auto mel = log_mel_spectrogram(clip, n_mels, window_samples);
  const int64_t content = clip.size(0) / whisper::hop_length;
  return torch::constant_pad_nd(mel.narrow(1, 0, content), {0, window_frames - content});
}

}  // namespace mmlearn::audio
