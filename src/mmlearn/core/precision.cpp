#include "mmlearn/core/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <fstream>

#include "mmlearn/core/error.h"

namespace mmlearn {

bool cpu_has_native_bf16() {
  static const bool has = [] {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("flags", 0) == 0)
        return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
    return false;
  }();
  return has;
}

Precision parse_precision(const std::string& name, bool fp64_allowed) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  if (name == "auto") return cpu_has_native_bf16() ? Precision::bf16 : Precision::fp32;
  if (name == "fp64" && fp64_allowed) return Precision::fp64;
  throw UsageError(str_cat("unknown precision \"", name, "\" (expected fp32, bf16",
                           fp64_allowed ? ", fp64" : "", " or auto)"));
}

// libtorch 2.4 replaced the device-specific autocast switches with device-generic ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool cpu_autocast_enabled() { return at::autocast::is_autocast_enabled(at::kCPU); }
static bool cuda_autocast_enabled() { return at::autocast::is_autocast_enabled(at::kCUDA); }
static void set_autocast(bool cpu, bool cuda) {
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, cpu);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, cuda);
}
#else
bool cpu_autocast_enabled() { return at::autocast::is_cpu_enabled(); }
static bool cuda_autocast_enabled() { return at::autocast::is_enabled(); }
static void set_autocast(bool cpu, bool cuda) {
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(cpu);
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(cuda);
}
#endif

// Both devices' autocast: each applies only to its own tensors, so a model on either runs in bf16.
AutocastGuard::AutocastGuard(Precision precision) {
  if (precision != Precision::bf16) return;
  active_ = true;
  was_enabled_ = cpu_autocast_enabled();
  was_cuda_enabled_ = cuda_autocast_enabled();
  set_autocast(true, true);
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  set_autocast(was_enabled_, was_cuda_enabled_);
  if (!was_enabled_ && !was_cuda_enabled_) at::autocast::clear_cache();
}

}  // namespace mmlearn
