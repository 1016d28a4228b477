// Evaluating a speech recognizer: greedy transcripts of a manifest's audio records scored against their
// text by word and character error rate (eval/wer.h).
//
//   nlohmann::json m = mmlearn::evaluate_transcription(whisper, "speech/test.jsonl", 200);
//   m["wer"], m["cer"], m["samples"], m["examples"][0]["hypothesis"]
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "mmlearn/models/whisper_import.h"

namespace mmlearn {

// Greedy transcripts of a manifest's first `limit` audio records (0: all), scored against their text:
// {"wer", "cer", "samples", "skipped", "examples": [{"reference", "hypothesis"}...]}. A manifest without a
// usable audio + text record is an error, not a WER of 0.
nlohmann::json evaluate_transcription(WhisperBundle& whisper, const std::filesystem::path& manifest,
                                      int64_t limit, int64_t batch_size = 16);

}  // namespace mmlearn
