// Moving module weights in and out of safetensors files, strictly: every parameter must be in the file with
// its exact shape, and every tensor in the file must be used — the error names the key and both shapes.
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

TensorMap parameter_map(const torch::nn::Module& module);
void save_parameters(const torch::nn::Module& module, const std::filesystem::path& path,
                     const std::map<std::string, std::string>& metadata = {});
// Copies (and converts from f16/bf16 where stored so) each tensor into the module's parameters.
void load_parameters(torch::nn::Module& module, const std::filesystem::path& path);
void load_parameters(torch::nn::Module& module, const TensorMap& tensors, const std::string& where);

}  // namespace mmlearn
