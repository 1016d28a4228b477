// The device a command computes on: "cpu", or "cuda" / "cuda:N" with a libtorch built with CUDA (on a GPU
// machine, PyTorch's own: CMakeLists.txt finds it). Models are built and data decoded on the CPU; a run on a
// GPU moves the model there once and each batch as it is used.
//
//   torch::Device d = mmlearn::parse_device("cuda");   // a UsageError naming --device without a GPU
#pragma once

#include <torch/types.h>

#include <string>

namespace mmlearn {

torch::Device parse_device(const std::string& name);

}  // namespace mmlearn
