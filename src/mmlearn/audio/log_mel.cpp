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

torch::Tensor mel_power(const torch::Tensor& audio, int64_t n_mels) {
  check(audio.dim() == 1, "audio must be one channel of samples, got shape ", audio.sizes());
  check(audio.size(0) > whisper::n_fft / 2, "audio of ", audio.size(0), " samples is too short for a ",
        whisper::n_fft, "-sample window; pad it (pad_or_trim)");
  auto spectrum = torch::stft(audio.to(torch::kFloat), whisper::n_fft, whisper::hop_length, whisper::n_fft,
                              hann_window(), /*center=*/true, /*pad_mode=*/"reflect", /*normalized=*/false,
                              /*onesided=*/true, /*return_complex=*/true);
  // Whisper drops the last frame, so that frames = samples / hop.
  auto power = spectrum.narrow(-1, 0, spectrum.size(-1) - 1).abs().pow(2);
  return whisper_mel_filters(n_mels).matmul(power);
}

torch::Tensor log_mel_from_power(const torch::Tensor& power, double max_log) {
  auto log_spec = power.clamp_min(1e-10).log10();
  log_spec = torch::maximum(log_spec, torch::full({}, max_log - 8.0, log_spec.options()));
  return (log_spec + 4.0) / 4.0;
}

torch::Tensor log_mel_spectrogram(const torch::Tensor& audio, int64_t n_mels, int64_t padding) {
  check(padding >= 0, "negative padding");
  auto x = padding > 0 ? torch::constant_pad_nd(audio, {0, padding}) : audio;
  auto power = mel_power(x, n_mels);
  return log_mel_from_power(power, power.max().clamp_min(1e-10).log10().item<double>());
}

}  // namespace mmlearn::audio
