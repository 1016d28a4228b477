// Whisper's decoding of one 30 s window (whisper/decoding.py): the start-of-transcript prompt, language
// detection, greedy or beam search over the decoder with a key/value cache, and the logit rules that keep
// the output well formed — blank and non-speech tokens suppressed, timestamps in pairs that never go back,
// the first timestamp within max_initial_timestamp, and a timestamp forced when the timestamps together are
// likelier than any text token.
//
//   mmlearn::WhisperDecodeOptions o{.language = "en"};
//   auto results = mmlearn::decode_whisper(bundle, mel, o);     // mel [B, n_mels, 3000]
//   std::cout << results[0].text;
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mmlearn/models/whisper_import.h"

namespace mmlearn {

struct WhisperDecodeOptions {
  std::string task = "transcribe";  // or "translate"
  std::string language;             // "" : detect
  double temperature = 0.0;         // 0: greedy (or beam search); > 0: sampling
  int64_t sample_len = 0;           // tokens to write at most; 0: n_text_ctx / 2
  int64_t beam_size = 0;            // 0: greedy
  double patience = 1.0;
  std::optional<double> length_penalty;  // none: rank by log-probability / length
  std::vector<int64_t> prompt;           // earlier text tokens (after <|startofprev|>)
  std::string prefix;                    // text to continue from
  std::string suppress_tokens = "-1";  // comma-separated ids; -1: the non-speech symbols (see WhisperBundle)
  bool suppress_blank = true;
  bool without_timestamps = false;
  double max_initial_timestamp = 1.0;
  uint64_t seed = 0;  // sampling at temperature > 0
};

struct WhisperDecodeResult {
  std::string language;
  std::vector<int64_t> tokens;  // sampled tokens, without the prompt and <|endoftext|>
  std::string text;
  double avg_logprob = 0, no_speech_prob = 0, temperature = 0, compression_ratio = 0;
  double sum_logprob = 0;
};

// Languages by probability at the first decoding position, for each mel in the batch [B, n_mels, frames].
std::vector<std::vector<std::pair<std::string, double>>> detect_language(WhisperBundle& whisper,
                                                                         const torch::Tensor& audio_features);

std::vector<WhisperDecodeResult> decode_whisper(WhisperBundle& whisper, const torch::Tensor& mel,
                                                const WhisperDecodeOptions& options);

// The reference tensors of one audio file, to check a model against its source: input_features
// [n_mels, 3000] (the first 30 s), encoder_output [n_audio_ctx, d], and with `tokens` the teacher-forced
// logits [tokens, vocab].
TensorMap dump_whisper(WhisperBundle& whisper, const std::filesystem::path& audio_file,
                       const std::vector<int64_t>& tokens);

// len(text) / len(zlib.compress(text)) of the UTF-8 text, as Whisper judges repetitive output.
double compression_ratio(const std::string& text);

}  // namespace mmlearn
