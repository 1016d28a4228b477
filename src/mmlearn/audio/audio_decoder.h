// Audio files to mono samples at one rate, as Whisper's loader makes them: FFmpeg decodes any container it
// knows (WAV, FLAC, OGG/Opus, MP3, M4A/AAC, the audio track of video files) and libswresample downmixes,
// resamples and converts to 16-bit with its default settings — the same steps as Whisper's `ffmpeg -ac 1 -ar
// 16000 -f s16le`, so the samples match the reference exactly. One decoder for every format keeps that
// promise simple.
//
// It streams: read() hands out the next samples, so long recordings never sit in memory whole.
//
//   mmlearn::audio::AudioDecoder decoder("talk.m4a");        // 16 kHz mono by default
//   std::vector<float> chunk;
//   while (decoder.read(chunk, 480000) > 0) { ...; chunk.clear(); }
//   std::vector<float> all = mmlearn::audio::load_audio("clip.flac");   // whole file, bounded by max_seconds
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace mmlearn::audio {

struct AudioOptions {
  int sample_rate = 16000;
  // load_audio refuses longer files (memory); stream them with AudioDecoder instead.
  double max_seconds = 4 * 3600.0;
  // What errors call the input; empty: its path.
  std::string name;
};

class AudioDecoder {
 public:
  explicit AudioDecoder(const std::filesystem::path& path, AudioOptions options = {});
  ~AudioDecoder();
  AudioDecoder(const AudioDecoder&) = delete;
  AudioDecoder& operator=(const AudioDecoder&) = delete;

  // Appends up to max_samples samples in [-1, 1) to out; returns how many (0 once the file is done). Throws
  // mmlearn::Error on undecodable or truncated input, naming the file.
  int64_t read(std::vector<float>& out, int64_t max_samples);

  const std::filesystem::path& path() const;
  int sample_rate() const;         // of the samples read() returns
  int source_sample_rate() const;  // of the file
  int source_channels() const;
  std::string codec() const;        // e.g. "flac", "mp3", "aac"
  double declared_seconds() const;  // the container's duration, or 0 when it gives none

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The whole file as mono samples at options.sample_rate. Throws mmlearn::Error for files without audio,
// undecodable or truncated ones, and ones longer than options.max_seconds.
std::vector<float> load_audio(const std::filesystem::path& path, const AudioOptions& options = {});

// Mono samples from one rate to another with libswresample's defaults (as the decoder resamples).
std::vector<float> resample(const std::vector<float>& samples, int from_rate, int to_rate);

// A 16-bit PCM WAV file of mono samples (values clipped to [-1, 1)).
std::string encode_wav(const std::vector<float>& samples, int sample_rate);

}  // namespace mmlearn::audio
