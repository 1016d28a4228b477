// Connectionist temporal classification (Graves et al., 2006) as an auxiliary head on an encoder: a linear
// projection of each position to the classes (the blank among them) and the CTC loss against token
// sequences. Trained beside an attention decoder it makes the encoder carry the words from the first steps
// (hybrid CTC/attention, Watanabe et al., 2017); it is training-only and is not saved with the model.
//
//   mmlearn::CtcHead ctc(width, eot + 1, /*blank=*/eot);
//   torch::Tensor loss = ctc->loss(encoder_states, targets);   // [B, T, width], one id list per example
#pragma once

#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>

#include <vector>

#include "mmlearn/core/precision.h"

namespace mmlearn {

struct CtcHeadImpl : torch::nn::Module {
  CtcHeadImpl(int64_t width, int64_t classes, int64_t blank)
      : proj(register_module("proj", torch::nn::Linear(width, classes))), blank(blank) {}

  torch::Tensor loss(const torch::Tensor& states, const std::vector<std::vector<int64_t>>& targets) {
    std::vector<int64_t> flat, lengths;
    for (const auto& t : targets) {
      flat.insert(flat.end(), t.begin(), t.end());
      lengths.push_back(static_cast<int64_t>(t.size()));
    }
    auto log_probs = full_precision(proj(states)).log_softmax(-1).transpose(0, 1);  // [T, B, C]
    return torch::nn::functional::ctc_loss(
        log_probs, torch::tensor(flat).to(states.device()),
        torch::full({states.size(0)}, states.size(1), torch::kLong), torch::tensor(lengths),
        torch::nn::functional::CTCLossFuncOptions().blank(blank).zero_infinity(true));
  }

  torch::nn::Linear proj;
  int64_t blank;
};
TORCH_MODULE(CtcHead);

}  // namespace mmlearn
