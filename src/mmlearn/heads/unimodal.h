// Auxiliary per-modality classifiers (Gradient-Blending: Wang, Tran & Feiszli, 2020): a linear classifier on
// each encoder's pooled output, trained with the fused loss and dropped afterwards. A modality that learns
// slowly (an image encoder from scratch) otherwise stays unused once a quicker one (the words) explains
// what it can.
//
//   mmlearn::UnimodalHeads heads({"image", "text"}, dim, classes);
//   loss = fused_loss + 0.5 * heads->loss(output.encoded, labels);
#pragma once

#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mmlearn/fusion/fusion.h"

namespace mmlearn {

struct UnimodalHeadsImpl : torch::nn::Module {
  UnimodalHeadsImpl(const std::vector<std::string>& modalities, int64_t dim, int64_t classes) {
    for (const auto& m : modalities) heads.emplace(m, register_module(m, torch::nn::Linear(dim, classes)));
  }
  // The mean over modalities of the cross-entropy over the examples where each is present; `mean` divides a
  // sum by a count (over every process's examples in data-parallel training: StepContext::group_mean).
  torch::Tensor loss(const ModalityOutputs& encoded, const torch::Tensor& labels,
                     const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& mean) {
    torch::Tensor total = torch::zeros({});
    for (const auto& [m, out] : encoded) {
      auto present = out.mask.any(1).to(torch::kFloat);
      auto ce = torch::nn::functional::cross_entropy(
          heads.at(m)(out.pooled), labels,
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
      total = total + mean((ce * present).sum(), present.sum());
    }
    return total / static_cast<double>(encoded.size());
  }
  std::map<std::string, torch::nn::Linear> heads;
};
TORCH_MODULE(UnimodalHeads);

}  // namespace mmlearn
