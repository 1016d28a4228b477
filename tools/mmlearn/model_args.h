// The flags every command that opens a CLIP model shares: --model (any format models/clip_import.h opens),
// --tokenizer and --activation for bare state dicts.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "mmlearn/models/clip_import.h"

namespace mmlearn::cli {

struct ModelArgs {
  std::string model, tokenizer, activation;
};

void add_model_options(CLI::App* cmd, ModelArgs& args);
ClipBundle open_model(const ModelArgs& args);

}  // namespace mmlearn::cli
