#include "mmlearn/heads/contrastive.h"

#include <torch/nn/functional.h>

#include "mmlearn/distributed/data_parallel.h"

namespace mmlearn {

torch::Tensor clip_loss(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                        const torch::Tensor& logit_scale, int64_t offset, const DataParallel* parallel,
                        const torch::Tensor& negative_embeds) {
  const auto scale = logit_scale.exp().clamp_max(kMaxLogitScale);
  const auto labels = torch::arange(offset, offset + image_embeds.size(0),
                                    torch::TensorOptions().dtype(torch::kLong).device(image_embeds.device()));
  namespace F = torch::nn::functional;
  // The negatives follow every true caption, so that each image's label is its caption's column as before.
  const auto with_negatives = [&](const torch::Tensor& logits) {
    return negative_embeds.defined()
               ? torch::cat({logits, scale * torch::matmul(image_embeds, negative_embeds.t())}, 1)
               : logits;
  };
  if (!parallel) {
    auto logits = scale * torch::matmul(image_embeds, text_embeds.t());
    return 0.5 * (F::cross_entropy(with_negatives(logits), labels) + F::cross_entropy(logits.t(), labels));
  }
  const auto all_images = parallel->all_gather_with_grad(image_embeds);
  const auto all_texts = parallel->all_gather_with_grad(text_embeds);
  return 0.5 * (F::cross_entropy(with_negatives(scale * torch::matmul(image_embeds, all_texts.t())), labels) +
                F::cross_entropy(scale * torch::matmul(text_embeds, all_images.t()), labels));
}

}  // namespace mmlearn
