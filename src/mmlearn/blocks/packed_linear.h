// y = x Wᵀ + b for inference on CPU through oneDNN's inner product, with W held as a oneDNN tensor made once
// rather than on every call. On ViT-B/32 image embedding this runs about 2x the dense (OpenBLAS) path in
// fp32, with the same results to ~1e-6 (bench/run.sh). Everywhere else — training, autocast, non-float or
// non-CPU tensors — it is exactly torch::nn::functional::linear.
//
// The packed copy is made on the first call in inference mode (c10::InferenceMode), remade when the weight
// changes (a new tensor or an in-place update), and dropped by the first call outside inference mode, so
// training holds no second copy of its weights.
//
//   mmlearn::PackedLinear packed;                      // a member of the module owning weight and bias
//   torch::Tensor y = packed(x, weight, bias);          // x: [..., in], weight: [out, in], bias: [out] or {}
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <mutex>

namespace mmlearn {

class PackedLinear {
 public:
  PackedLinear() = default;
  // Modules are copied by clone(); the copy packs its own weights.
  PackedLinear(const PackedLinear&) {}
  PackedLinear& operator=(const PackedLinear&) { return *this; }

  at::Tensor operator()(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

 private:
  std::mutex mutex_;
  at::Tensor weight_, bias_;         // oneDNN tensors, or undefined when nothing is packed
  std::array<int64_t, 4> source_{};  // what they were packed from: weight and bias, address and version
};

}  // namespace mmlearn
