// Contrastive alignment heads. clip_loss is the symmetric InfoNCE loss of CLIP (Radford et al., 2021): each
// image must pick its own caption among the batch's captions, and each caption its own image.
//
//   auto loss = mmlearn::clip_loss(image_embeds, text_embeds, model->logit_scale);
#pragma once

#include <torch/types.h>

namespace mmlearn {

// image_embeds, text_embeds: [B, E], L2-normalized; logit_scale: scalar log-temperature (exp'd here).
torch::Tensor clip_loss(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                        const torch::Tensor& logit_scale);

// Largest exp(logit_scale) allowed, as in CLIP: keeps the softmax from collapsing to a one-hot early on.
constexpr double kMaxLogitScale = 100.0;

}  // namespace mmlearn
