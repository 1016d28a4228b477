// Whisper's log-mel spectrogram: 25 ms Hann windows every 10 ms over 16 kHz audio, power spectra through a
// Slaney-style mel filter bank (80 or 128 bins), log10 clamped to 8 below its maximum and scaled to about
// [-1, 1]. The filters are computed here (librosa's formula), not read from a file; they match Whisper's
// mel_filters.npz to float precision.
//
//   auto audio = torch::from_blob(samples.data(), {n}).clone();                    // 16 kHz mono
//   torch::Tensor x = mmlearn::audio::log_mel_spectrogram(pad_or_trim(audio), 80);  // [80, 3000]
#pragma once

#include <torch/types.h>

namespace mmlearn::audio {

namespace whisper {
inline constexpr int sample_rate = 16000;
inline constexpr int n_fft = 400;                                    // 25 ms
inline constexpr int hop_length = 160;                               // 10 ms: 100 frames per second
inline constexpr int64_t chunk_samples = 30 * sample_rate;           // one 30 s window
inline constexpr int64_t chunk_frames = chunk_samples / hop_length;  // 3000
}  // namespace whisper

// [n_mels, n_fft / 2 + 1] triangular filters with Slaney's mel scale and area normalization (librosa's
// `filters.mel(sr, n_fft, n_mels)` with htk=False, norm="slaney").
torch::Tensor mel_filters(int64_t n_mels, int64_t n_fft = whisper::n_fft,
                          int64_t sample_rate = whisper::sample_rate);

// mel_filters(n_mels) for Whisper's STFT, made once per size.
const torch::Tensor& whisper_mel_filters(int64_t n_mels);

// Zero-pads or cuts the last dimension to `length` samples.
torch::Tensor pad_or_trim(const torch::Tensor& audio, int64_t length = whisper::chunk_samples);

// audio [samples] (float, 16 kHz) -> [n_mels, (samples + padding) / 160], after appending `padding` zeros.
torch::Tensor log_mel_spectrogram(const torch::Tensor& audio, int64_t n_mels, int64_t padding = 0);

// The features transcription gives a model for a clip no longer than one window of `window_frames`: the
// log-mel of the clip followed by a window of silence (clamped by its global maximum), its content frames
// kept and zero-padded after the log to the window, as Whisper's transcribe() pads them. Longer clips are
// cut to the window.
torch::Tensor window_features(const torch::Tensor& audio, int64_t n_mels, int64_t window_frames);

// The steps of log_mel_spectrogram, for callers that see the audio in pieces: mel power spectra of frames
// (before the log), and the log with its clamp to `max_log - 8` and scaling.
torch::Tensor mel_power(const torch::Tensor& audio, int64_t n_mels);
// Mel power of `frames` frames of samples already padded as the STFT needs (frame f starts at sample 160 f).
torch::Tensor frames_mel_power(const torch::Tensor& samples, int64_t frames, int64_t n_mels);
torch::Tensor log_mel_from_power(const torch::Tensor& power, double max_log);

}  // namespace mmlearn::audio
