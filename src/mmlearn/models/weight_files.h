// Reading the weight files that model repositories ship: one .safetensors file, a torch.save file
// (.pt/.bin/.pth, read without executing its pickle), or a Hugging Face directory's model.safetensors, its
// shards named by model.safetensors.index.json, or pytorch_model.bin.
//
//   mmlearn::TensorMap w = mmlearn::read_hf_weights("whisper-base");
#pragma once

#include <filesystem>
#include <string>

#include "mmlearn/core/safetensors.h"

namespace mmlearn {

TensorMap read_weight_file(const std::filesystem::path& path);
// The "model_type" of a model directory's config.json, or "" when the directory, the file or the field is
// missing or unreadable (the loader that follows reports what is wrong with it).
std::string config_model_type(const std::filesystem::path& dir);
TensorMap read_hf_weights(const std::filesystem::path& dir);

// A config is checked against the weights before a module is built from it: a config.json that asks for
// more parameters than the weights hold ("layers": 1000000) would otherwise allocate until the machine runs
// out. `least` is a lower bound of the parameters the config describes (its transformer matrices and
// embeddings), counted in double so that absurd sizes do not overflow.
void check_config_fits_weights(double least, const TensorMap& weights, const std::string& config_where,
                               const std::string& weights_where);

}  // namespace mmlearn
