// Numeric precision of a run. fp32 is exact (it matches reference implementations); bf16 runs matrix products
// in bfloat16 under autocast, with weights, norms, softmax and losses kept in fp32 — on CPUs with native bf16
// (AVX512-BF16, AMX) it trains clip-tiny 3.5-4x faster than fp32 (bench/run.sh).
//
//   mmlearn::Precision p = mmlearn::parse_precision("auto");   // bf16 where the CPU has it, else fp32
//   { mmlearn::AutocastGuard guard(p); loss = forward(...); }  // autocast only inside the guard
#pragma once

#include <string>

namespace mmlearn {

enum class Precision { fp32, bf16 };

// "fp32", "bf16", or "auto" (bf16 when the CPU computes it natively, fp32 otherwise).
Precision parse_precision(const std::string& name);
bool cpu_has_native_bf16();
bool cpu_autocast_enabled();  // whether CPU autocast is on in this thread

// Enables autocast to bfloat16 (CPU and CUDA) for its lifetime when precision is bf16; does nothing for fp32.
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
