// Evaluating a captioner or a visual question answerer (models/captioner.h) on a manifest's held-out records.
//   caption: BLEU-4 and CIDEr-D of the written captions against the record's "text", and, where the record
//            holds its scene's "objects", grounded accuracy: the share of captions that name every object by
//            colour and shape and invent none (eval/caption_metrics.h).
//   vqa:     exact-match accuracy of the written answers (normalized as transcripts are: case, punctuation,
//            spaces), overall and by the record's "type"; chart questions (types "chart_*") and scene
//            questions also apart.
//
//   nlohmann::json m = mmlearn::evaluate_captioner(captioner, "vqa/test.jsonl", {.limit = 500});
//   m["accuracy"], m["by_type"]["count"], m["examples"][0]["hypothesis"]
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "mmlearn/heads/text_generation.h"
#include "mmlearn/models/captioner.h"

namespace mmlearn {

struct CaptionerEvalOptions {
  int64_t limit = 0;    // the first N usable records; 0: all
  bool strict = false;  // the first unreadable record is an error
  GenerationOptions generation;
  int64_t batch_size = 64;
};

// {"samples", "skipped", "examples": [{"image", "prompt", "reference", "hypothesis"}...]} and, for a
// captioner, "bleu4", "cider", "grounded_accuracy" (null when no record holds "objects"); for a question
// answerer, "accuracy", "by_type": {TYPE: accuracy}, "count_by_type", "charts" and "scenes" (null when none).
// A manifest without a usable record is an error, not a score of 0.
nlohmann::json evaluate_captioner(CaptionerBundle& m, const std::filesystem::path& manifest,
                                  const CaptionerEvalOptions& options);

}  // namespace mmlearn
