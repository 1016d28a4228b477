#include "mmlearn/blocks/packed_linear.h"

#include <ATen/Context.h>
#include <ATen/Functions.h>
#include <c10/core/InferenceMode.h>

#include "mmlearn/core/precision.h"

namespace mmlearn {

namespace {

bool packable(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return c10::InferenceMode::is_enabled() && at::hasMKLDNN() && !cpu_autocast_enabled() && x.is_cpu() &&
         weight.is_cpu() && x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat &&
         weight.dim() == 2 && x.dim() >= 2 && (!bias.defined() || bias.scalar_type() == at::kFloat);
}

// Inference tensors keep no version counter; they can only change inside inference mode, where a model's
// weights are not updated.
int64_t version_of(const at::Tensor& t) {
  return !t.defined() || t.is_inference() ? 0 : static_cast<int64_t>(t._version());
}

std::array<int64_t, 4> source_of(const at::Tensor& weight, const at::Tensor& bias) {
  auto address = [](const at::Tensor& t) {
    return t.defined() ? reinterpret_cast<int64_t>(t.data_ptr()) : 0;
  };
  return {address(weight), version_of(weight), address(bias), version_of(bias)};
}

}  // namespace

at::Tensor PackedLinear::operator()(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (!packable(x, weight, bias)) {
    if (weight_.defined()) {
      std::lock_guard<std::mutex> lock(mutex_);
      weight_ = bias_ = at::Tensor();
    }
    return at::linear(x, weight, bias);
  }
  at::Tensor w, b;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto source = source_of(weight, bias);
    if (!weight_.defined() || source_ != source) {
      weight_ = weight.contiguous().to_mkldnn();
      bias_ = bias.defined() ? bias.contiguous().to_mkldnn() : at::Tensor();
      source_ = source;
    }
    w = weight_;
    b = bias_;
  }
  auto sizes = x.sizes().vec();
  auto x2 = x.reshape({-1, sizes.back()}).contiguous().to_mkldnn();
  sizes.back() = weight.size(0);
  return at::mkldnn_linear(x2, w, b).to_dense().view(sizes);
}

}  // namespace mmlearn
