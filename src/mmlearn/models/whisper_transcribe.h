// Whisper's long-form transcription (whisper/transcribe.py): 30 s windows that move to the last timestamp the
// model wrote, each decoded with the text so far as its prompt, retried at higher temperatures when the
// output repeats itself (compression ratio) or is unlikely (average log-probability), and skipped as silence
// when the no-speech probability is high and the text unlikely. Features come window by window from
// audio::LogMelStream, so a recording of any length is transcribed in bounded memory.
//
//   mmlearn::Transcript t = mmlearn::transcribe(whisper, "talk.m4a", {});
//   std::cout << mmlearn::to_srt(t);
#pragma once

#include <filesystem>
#include <functional>
#include <optional>

#include "mmlearn/audio/log_mel_stream.h"
#include "mmlearn/models/transcript.h"
#include "mmlearn/models/whisper_decoding.h"

namespace mmlearn {

struct TranscribeOptions {
  WhisperDecodeOptions decode;  // language, task, beam size, ... (prompt and temperature are set per window)
  std::vector<double> temperatures = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};
  std::optional<double> compression_ratio_threshold = 2.4;
  std::optional<double> logprob_threshold = -1.0;
  std::optional<double> no_speech_threshold = 0.6;
  bool condition_on_previous_text = true;
  std::string initial_prompt;
  // Called after each window with the seconds done and in total.
  std::function<void(double done, double total)> progress;
};

Transcript transcribe(WhisperBundle& whisper, audio::LogMelStream& mel, const TranscribeOptions& options);
Transcript transcribe(WhisperBundle& whisper, const std::filesystem::path& audio_file,
                      const TranscribeOptions& options);

}  // namespace mmlearn
