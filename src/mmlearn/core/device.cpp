#include "mmlearn/core/device.h"

#include <torch/cuda.h>

#include <regex>

#include "mmlearn/core/error.h"

namespace mmlearn {

torch::Device parse_device(const std::string& name) {
  static const std::regex form(R"(cpu|cuda(:\d{1,2})?)");
  if (!std::regex_match(name, form))
    throw UsageError(str_cat("--device ", name, ": expected cpu, cuda or cuda:N"));
  if (name == "cpu") return torch::kCPU;
  if (!torch::cuda::is_available())
    throw UsageError(
        str_cat("--device ", name,
                ": no CUDA device is usable (this mmlearn is built against a libtorch without CUDA, "
                "or no GPU is visible); build against PyTorch's CUDA libtorch on a GPU machine"));
  const torch::Device device(name);
  if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count()))
    throw UsageError(
        str_cat("--device ", name, ": there are ", torch::cuda::device_count(), " CUDA devices"));
  return device;
}

}  // namespace mmlearn
