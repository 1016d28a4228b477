// Contrastive alignment heads. clip_loss is the symmetric InfoNCE loss of CLIP (Radford et al., 2021): each
// image must pick its own caption among the batch's captions, and each caption its own image.
//
//   auto loss = mmlearn::clip_loss(image_embeds, text_embeds, model->logit_scale);
#pragma once

#include <torch/types.h>

namespace mmlearn {

class DataParallel;

// image_embeds, text_embeds: [B, E], L2-normalized; logit_scale: scalar log-temperature (exp'd here).
// In data-parallel training (`parallel` given) the batch is every process's: each process scores its own
// B rows, starting at row `offset` of the gathered batch, against everyone's embeddings (OpenCLIP's local
// loss with gathered gradients: memory grows with B x world, not its square), and the mean of the processes'
// losses is the loss of the whole batch. `negative_embeds` [K, E] (NegCLIP's hard negatives, this process's):
// further captions each image must rank below its own; they are no image's caption.
torch::Tensor clip_loss(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                        const torch::Tensor& logit_scale, int64_t offset = 0,
                        const DataParallel* parallel = nullptr, const torch::Tensor& negative_embeds = {});

// Largest exp(logit_scale) allowed, as in CLIP: keeps the softmax from collapsing to a one-hot early on.
constexpr double kMaxLogitScale = 100.0;

}  // namespace mmlearn
