// Training a Whisper-architecture speech recognizer from scratch on a manifest of audio + text records (the
// shapes world with --audio, or any such manifest): a byte-level vocabulary learned from the training text,
// teacher-forced cross-entropy on <|startoftranscript|> <|notimestamps|> text <|endoftext|> (plus CTC on the
// encoder output while training), AdamW with
// warm-up and cosine decay, and the word error rate of greedy transcripts on held-out records as it goes.
// Features are made exactly as transcription makes them, so the model directory it writes transcribes files
// with `mmlearn transcribe`.
//
//   mmlearn::WhisperTrainOptions o{.data = "shapes", .out = "run", .minutes = 10};
//   auto result = mmlearn::train_whisper(o);
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "mmlearn/models/whisper_import.h"

namespace mmlearn {

struct WhisperTrainOptions {
  std::string preset = "whisper-tiny-shapes";
  std::filesystem::path
      data;  // directory with train.jsonl (+ test.jsonl) or a manifest; records: audio, text
  std::filesystem::path out;
  int64_t vocab_size = 512;  // learned byte-level vocabulary (before the special tokens)
  int64_t steps = 0;         // one of steps / minutes; none: 10 epochs
  double minutes = 0;
  int64_t batch_size = 32;
  double learning_rate = 1e-3;
  double weight_decay = 0.01;
  int64_t warmup_steps = 0;  // 0: 5% of the steps
  double grad_clip = 1.0;
  // Weight of an auxiliary CTC loss on the encoder output (hybrid CTC/attention, Watanabe et al., 2017): it
  // makes the encoder carry the words from the first steps, where the decoder alone first learns the
  // captions' language and only later to listen. Its projection is training-only; the model stays Whisper.
  double ctc_weight = 0.3;
  uint64_t seed = 0;
  int64_t eval_every = 0;      // steps; 0: about 5 times a run
  int64_t eval_samples = 200;  // held-out records transcribed at each evaluation
  // fp32 by default: the reported results are fp32. bf16 autocast trains too (its early NaNs came from the
  // oneDNN convolution backward that training now avoids) but has not been run to the end.
  std::string precision = "fp32";
};

struct WhisperTrainResult {
  int64_t steps = 0;
  double seconds = 0, final_loss = 0;
  int64_t skipped_records = 0;
  int64_t skipped_steps = 0;  // updates skipped for a non-finite gradient
  nlohmann::json final_eval;  // {"wer", "cer", "samples"}, null without held-out data
};

WhisperTrainResult train_whisper(const WhisperTrainOptions& options);

// Greedy transcripts of a manifest's first `limit` audio records (0: all), scored against their text:
// {"wer", "cer", "samples", "examples": [{"reference", "hypothesis"}...]}.
nlohmann::json evaluate_transcription(WhisperBundle& whisper, const std::filesystem::path& manifest,
                                      int64_t limit, int64_t batch_size = 16);

}  // namespace mmlearn
