#include "mmlearn/models/whisper_transcribe.h"

#include <torch/torch.h>

#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/error.h"
#include "mmlearn/text/unicode.h"

namespace mmlearn {

namespace {

// Decodes at the first temperature whose result is neither repetitive nor unlikely (silence excepted).
WhisperDecodeResult decode_with_fallback(WhisperBundle& w, const torch::Tensor& mel,
                                         const TranscribeOptions& o, WhisperDecodeOptions decode) {
  WhisperDecodeResult result;
  for (double t : o.temperatures) {
    decode.temperature = t;
    WhisperDecodeOptions attempt = decode;
    if (t > 0) attempt.beam_size = 0, attempt.patience = 1.0;
    result = decode_whisper(w, mel, attempt).at(0);
    bool fallback =
        (o.compression_ratio_threshold && result.compression_ratio > *o.compression_ratio_threshold) ||
        (o.logprob_threshold && result.avg_logprob < *o.logprob_threshold);
    if (o.no_speech_threshold && result.no_speech_prob > *o.no_speech_threshold) fallback = false;
    if (!fallback) break;
  }
  return result;
}

}  // namespace

Transcript transcribe(WhisperBundle& w, audio::LogMelStream& mel, const TranscribeOptions& o) {
  const auto& tok = w.tokenizer;
  const WhisperConfig& config = w.model->config;
  check(!o.temperatures.empty(), "transcribe needs at least one temperature");
  const int64_t content_frames = mel.content_frames();
  const double frame_seconds = static_cast<double>(audio::whisper::hop_length) / audio::whisper::sample_rate;
  // A window is what the encoder takes: 2 frames per position (3000 frames, 30 s, for Whisper's 1500).
  const int64_t kWindow = 2 * config.n_audio_ctx;
  check(mel.total_frames() - mel.content_frames() >= kWindow, "the features must be padded by a window");
  const int64_t input_stride = 2;  // mel frames per output position
  const double time_precision = static_cast<double>(input_stride) * frame_seconds;  // 0.02 s

  Transcript transcript;
  transcript.duration = static_cast<double>(mel.samples()) / audio::whisper::sample_rate;
  WhisperDecodeOptions decode = o.decode;
  if (!w.timestamps) decode.without_timestamps = true;  // a model that never learned them
  if (decode.language.empty()) {
    if (w.multilingual) {
      auto features = w.model->encoder->forward(mel.frames(0, kWindow).unsqueeze(0));
      decode.language = detect_language(w, features)[0][0].first;
    } else {
      decode.language = "en";
    }
  }
  transcript.language = decode.language;

  std::vector<int64_t> all_tokens;
  size_t prompt_reset_since = 0;
  if (!text::strip_ascii_space(o.initial_prompt).empty())
    all_tokens = tok.encode(" " + text::strip_ascii_space(o.initial_prompt));
  int64_t seek = 0;
  while (seek < content_frames) {
    const double time_offset = static_cast<double>(seek) * frame_seconds;
    const int64_t segment_size = std::min(kWindow, content_frames - seek);
    const double segment_duration = static_cast<double>(segment_size) * frame_seconds;
    // The window's frames, zero-padded after the log to 30 s as Whisper pads them.
    auto window = torch::constant_pad_nd(mel.frames(seek, segment_size), {0, kWindow - segment_size});
    decode.prompt.assign(all_tokens.begin() + static_cast<std::ptrdiff_t>(prompt_reset_since),
                         all_tokens.end());
    const WhisperDecodeResult result = decode_with_fallback(w, window.unsqueeze(0), o, decode);
    const std::vector<int64_t>& tokens = result.tokens;

    if (o.no_speech_threshold && result.no_speech_prob > *o.no_speech_threshold &&
        !(o.logprob_threshold && result.avg_logprob > *o.logprob_threshold)) {
      seek += segment_size;  // silence: on to the next window
      if (o.progress)
        o.progress(std::min(seek, content_frames) * frame_seconds, content_frames * frame_seconds);
      continue;
    }

    const int64_t previous_seek = seek;
    std::vector<TranscriptSegment> current;
    auto add_segment = [&](double start, double end, std::vector<int64_t> segment_tokens) {
      TranscriptSegment s;
      s.seek = seek;
      s.start = start;
      s.end = end;
      std::vector<int64_t> text_tokens;
      for (int64_t t : segment_tokens)
        if (t < tok.eot) text_tokens.push_back(t);
      s.text = tok.decode(text_tokens);
      s.tokens = std::move(segment_tokens);
      s.temperature = result.temperature;
      s.avg_logprob = result.avg_logprob;
      s.compression_ratio = result.compression_ratio;
      s.no_speech_prob = result.no_speech_prob;
      current.push_back(std::move(s));
    };
    auto is_timestamp = [&](size_t i) { return tokens[i] >= tok.timestamp_begin; };
    const size_t n = tokens.size();
    const bool single_timestamp_ending = n >= 2 && !is_timestamp(n - 2) && is_timestamp(n - 1);
    std::vector<size_t> slices;  // after each pair of consecutive timestamps
    for (size_t i = 1; i < n; ++i)
      if (is_timestamp(i - 1) && is_timestamp(i)) slices.push_back(i);
    if (!slices.empty()) {
      if (single_timestamp_ending) slices.push_back(n);
      size_t last_slice = 0;
      for (size_t current_slice : slices) {
        std::vector<int64_t> part(tokens.begin() + static_cast<std::ptrdiff_t>(last_slice),
                                  tokens.begin() + static_cast<std::ptrdiff_t>(current_slice));
        const double start =
            time_offset + static_cast<double>(part.front() - tok.timestamp_begin) * time_precision;
        const double end =
            time_offset + static_cast<double>(part.back() - tok.timestamp_begin) * time_precision;
        add_segment(start, end, std::move(part));
        last_slice = current_slice;
      }
      if (single_timestamp_ending)
        seek += segment_size;
      else
        seek += (tokens[last_slice - 1] - tok.timestamp_begin) * input_stride;
    } else {
      double duration = segment_duration;
      int64_t last_timestamp = -1;
      for (int64_t t : tokens)
        if (t >= tok.timestamp_begin) last_timestamp = t;
      if (last_timestamp >= 0 && last_timestamp != tok.timestamp_begin)
        duration = static_cast<double>(last_timestamp - tok.timestamp_begin) * time_precision;
      add_segment(time_offset, time_offset + duration, tokens);
      seek += segment_size;
    }
    if (seek <= previous_seek) seek = previous_seek + segment_size;  // never stall on a degenerate window
    // Instantaneous or empty segments keep their place but no text.
    for (auto& s : current)
      if (s.start == s.end || text::strip_ascii_space(s.text).empty()) s.text.clear(), s.tokens.clear();
    for (auto& s : current) {
      s.id = static_cast<int64_t>(transcript.segments.size());
      all_tokens.insert(all_tokens.end(), s.tokens.begin(), s.tokens.end());
      transcript.text += s.text;
      transcript.segments.push_back(std::move(s));
    }
    if (!o.condition_on_previous_text || result.temperature > 0.5) prompt_reset_since = all_tokens.size();
    if (o.progress)
      o.progress(std::min(seek, content_frames) * frame_seconds, content_frames * frame_seconds);
  }
  return transcript;
}

Transcript transcribe(WhisperBundle& w, const std::filesystem::path& audio_file, const TranscribeOptions& o) {
  auto mel =
      audio::LogMelStream::of_file(audio_file, w.model->config.n_mels, 2 * w.model->config.n_audio_ctx);
  return transcribe(w, mel, o);
}

}  // namespace mmlearn
