// Reading the weight files that model repositories ship: one .safetensors file, a torch.save file
// (.pt/.bin/.pth, read without executing its pickle), or a Hugging Face directory's model.safetensors, its
// shards named by model.safetensors.index.json, or pytorch_model.bin.
//
//   mmlearn::TensorMap w = mmlearn::read_hf_weights("whisper-base");
#pragma once

#include <filesystem>

#include "mmlearn/core/safetensors.h"

namespace mmlearn {

TensorMap read_weight_file(const std::filesystem::path& path);
TensorMap read_hf_weights(const std::filesystem::path& dir);

}  // namespace mmlearn
