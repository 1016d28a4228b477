// Numeric precision of a run. fp32 is exact (it matches reference implementations); bf16 runs matrix products
// in bfloat16 under autocast, with weights, norms, softmax and losses kept in fp32 — on CPUs with native bf16
// (AVX512-BF16, AMX) it trains clip-tiny 3.5-4x faster than fp32 (bench/run.sh). fp64 is for training only:
// weights, activations and optimizer state in double, so that runs whose sums are ordered differently (more
// threads, several workers) agree to ~1e-16 rather than to fp32's rounding.
//
//   mmlearn::Precision p = mmlearn::parse_precision("auto");   // bf16 where the CPU has it, else fp32
//   { mmlearn::AutocastGuard guard(p); loss = forward(...); }  // autocast only inside the guard
#pragma once

#include <torch/types.h>

#include <string>

namespace mmlearn {

enum class Precision { fp32, bf16, fp64 };

// "fp32", "bf16", or "auto" (bf16 when the CPU computes it natively, fp32 otherwise); "fp64" too where
// `fp64_allowed` (training).
Precision parse_precision(const std::string& name, bool fp64_allowed = false);
bool cpu_has_native_bf16();
bool cpu_autocast_enabled();  // whether CPU autocast is on in this thread

// `t` in fp32 for what needs it (softmax, losses, normalized embeddings under bf16 autocast), or left in fp64
// when it is (fp64 training).
inline torch::Tensor full_precision(const torch::Tensor& t) {
  return t.scalar_type() == torch::kDouble ? t : t.to(torch::kFloat);
}

// Enables autocast to bfloat16 (CPU and CUDA) for its lifetime when precision is bf16, and nothing else.
class AutocastGuard {
 public:
  explicit AutocastGuard(Precision precision);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false, was_enabled_ = false, was_cuda_enabled_ = false;
};

}  // namespace mmlearn
