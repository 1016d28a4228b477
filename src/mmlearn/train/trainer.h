// The one trainer: every model family trains through this loop (its TrainTask gives the model, the loss and
// the evaluation). It owns the run's length (--steps / --epochs / --minutes), warm-up and cosine schedule,
// AdamW with decayed and undecayed groups, gradient accumulation and clipping, precision, evaluation cadence,
// RUN/metrics.jsonl, the progress bar, and checkpoints with exact resume: a run killed at any step and
// resumed ends with the same weights, bit for bit, as one that never stopped.
//
//   mmlearn::TrainResult r = mmlearn::train({.preset = "clip-tiny", .data = "shapes", .out = "run"});
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "mmlearn/train/train_options.h"

namespace mmlearn {

struct TrainResult {
  std::string model_type, preset;
  int rank = 0;       // in data-parallel training, this worker's (rank 0 writes the run)
  int64_t steps = 0;  // the step the run stands at (its total when it finished)
  int64_t total_steps = 0;
  bool finished = false;  // false when --stop-after left it with a checkpoint
  double seconds = 0, final_loss = 0;
  int64_t skipped_records = 0;
  int64_t skipped_steps = 0;  // updates skipped for a non-finite gradient
  int64_t parameters = 0;
  nlohmann::json final_eval;  // null without held-out data, or when the run stopped early
};

TrainResult train(const TrainOptions& options);

}  // namespace mmlearn
