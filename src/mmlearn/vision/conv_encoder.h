// A small convolutional image encoder for training from scratch on small images (the synthetic worlds): a
// stack of 3x3 convolutions, the first at stride 1 and the rest at stride 2, with GELU between, whose last
// feature map is read as tokens (one per cell, with learned positions), max-pooled into one vector. A
// convolution stack learns local detail such as a mouth's curve from a few thousand images, where a ViT of
// the same size needs far more.
//
//   mmlearn::ConvEncoder enc(mmlearn::ConvEncoderConfig{.image_size = 48, .channels = {32, 64, 64}, .dim =
//   64}); mmlearn::EncoderOutput out = enc->forward(pixels);  // float [B, 3, 48, 48] -> tokens [B, 36, 64]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "mmlearn/blocks/encoder_output.h"

namespace mmlearn {

struct ConvEncoderConfig {
  int64_t image_size = 48;
  std::vector<int64_t> channels = {32, 64, 64};  // hidden convolutions; a last one maps to dim
  int64_t dim = 64;
};

// The side of the token grid: the image side after one stride-1 and channels.size() stride-2 convolutions.
int64_t conv_grid_size(const ConvEncoderConfig& config);

struct ConvEncoderImpl : torch::nn::Module {
  explicit ConvEncoderImpl(const ConvEncoderConfig& config);
  EncoderOutput forward(const torch::Tensor& pixels);  // normalised float [B, 3, S, S]

  ConvEncoderConfig config;
  torch::nn::ModuleList convs;
  torch::Tensor positional_embedding;  // [grid * grid, dim]
  torch::nn::LayerNorm ln{nullptr};
};
TORCH_MODULE(ConvEncoder);

}  // namespace mmlearn
