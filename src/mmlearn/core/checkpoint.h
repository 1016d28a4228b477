// Moving module weights in and out of safetensors files, strictly: every parameter and buffer (BatchNorm's
// running statistics) must be in the file with its exact shape, and every tensor in the file must be used —
// the error names the key and both shapes. BatchNorm's step counter alone may be absent (it does not change
// the numbers, and published checkpoints often lack it).
//
//   mmlearn::save_parameters(*model, "run/model.safetensors", {{"format", "pt"}});
//   mmlearn::load_parameters(*model, "run/model.safetensors");
#pragma once

#include <torch/nn/module.h>

#include <filesystem>
#include <map>
#include <string>

#include "mmlearn/core/safetensors.h"

namespace mmlearn {

// Parameters and buffers by their dotted names (what PyTorch calls the state dict).
TensorMap parameter_map(const torch::nn::Module& module);
void save_parameters(const torch::nn::Module& module, const std::filesystem::path& path,
                     const std::map<std::string, std::string>& metadata = {});
// Copies (and converts from f16/bf16 where stored so) each tensor into the module's parameters and buffers.
void load_parameters(torch::nn::Module& module, const std::filesystem::path& path);
void load_parameters(torch::nn::Module& module, const TensorMap& tensors, const std::string& where);

}  // namespace mmlearn
