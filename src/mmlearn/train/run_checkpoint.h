// A run's checkpoints: RUN/checkpoint/step-NNNNNNNN/ holds everything a run needs to go on exactly as if it
// had never stopped —
//   model/                 the model directory at that step (eval, embed, ... open it like any other)
//   training.safetensors   the tensors of training-only heads (absent when there are none)
//   optimizer.pt           AdamW's moments and step counts
//   rng.safetensors        the random generators' states
//   fp64.safetensors       an fp64 run's exact weights (model/ holds them in fp32, as every model does)
//   state.json             the step, the planned length and the options the run was started with
// A checkpoint is written into a temporary folder and renamed into place, so a run killed at any moment
// leaves only complete checkpoints; the newest `keep` are kept.
//
//   mmlearn::save_run_checkpoint("run/checkpoint", step, task, optimizer, rng, {}, state, 2);
//   if (auto latest = mmlearn::latest_run_checkpoint("run/checkpoint")) ...
#pragma once

#include <torch/optim/optimizer.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "mmlearn/core/safetensors.h"
#include "mmlearn/train/train_task.h"

namespace mmlearn {

void save_run_checkpoint(const std::filesystem::path& checkpoints, int64_t step, TrainTask& task,
                         torch::optim::Optimizer& optimizer, const TensorMap& rng, const TensorMap& fp64,
                         const nlohmann::json& state, int64_t keep);

// The newest complete checkpoint folder, if any.
std::optional<std::filesystem::path> latest_run_checkpoint(const std::filesystem::path& checkpoints);

// Reads a checkpoint's state.json (every file's error names the file).
nlohmann::json read_run_state(const std::filesystem::path& checkpoint);
// Loads the training-only tensors, an fp64 run's exact weights and the optimizer into a task built from the
// checkpoint's model/ (in fp64 already, for an fp64 run) and returns the generators' states.
TensorMap load_run_checkpoint(const std::filesystem::path& checkpoint, TrainTask& task,
                              torch::optim::Optimizer& optimizer);

}  // namespace mmlearn
