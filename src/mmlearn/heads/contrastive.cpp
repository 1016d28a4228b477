#include "mmlearn/heads/contrastive.h"

#include <torch/nn/functional.h>

namespace mmlearn {

torch::Tensor clip_loss(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                        const torch::Tensor& logit_scale) {
  auto logits = logit_scale.exp().clamp_max(kMaxLogitScale) * torch::matmul(image_embeds, text_embeds.t());
  auto labels =
      torch::arange(logits.size(0), torch::TensorOptions().dtype(torch::kLong).device(logits.device()));
  namespace F = torch::nn::functional;
  return 0.5 * (F::cross_entropy(logits, labels) + F::cross_entropy(logits.t(), labels));
}

}  // namespace mmlearn
