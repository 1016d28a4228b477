// CLIP's ResNet image tower (Radford et al., 2021, "ModifiedResNet"): a three-convolution stem with average
// pooling, bottleneck stages whose strided steps average-pool before the 1x1 expansion (anti-aliased
// downsampling), and attention pooling (a query from the mean of the feature map, learned positions) instead
// of global average pooling. Parameter names follow OpenAI CLIP's `visual.*` keys of the RN50 family.
//
// Convolutions carry translation invariance that a Vision Transformer has to learn from data: on the shapes
// world a tiny ResNet tells a square from a circle after a few hundred steps, where a ViT of the same cost is
// still guessing, which is why clip-tiny uses one.
//
//   mmlearn::ModifiedResNet rn(mmlearn::VisionConfig{.image_size = 64, .width = 16, .resnet_layers =
//   {1,1,1,1}},
//                              /*output_dim=*/128);
//   mmlearn::EncoderOutput out = rn->forward(pixels);   // pixels [B, 3, 64, 64] -> out.pooled [B, 128]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "mmlearn/blocks/encoder_output.h"
#include "mmlearn/vision/vit.h"

namespace mmlearn {

// 1x1 convolution + BatchNorm on the shortcut, after average pooling when the block is strided; the children
// are named "0" and "1" as in OpenAI's checkpoints.
struct DownsampleImpl : torch::nn::Module {
  DownsampleImpl(int64_t in, int64_t out, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t stride;
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(Downsample);

struct BottleneckImpl : torch::nn::Module {
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t stride;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  Downsample downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

struct AttentionPool2dImpl : torch::nn::Module {
  AttentionPool2dImpl(int64_t spatial, int64_t width, int64_t heads, int64_t output_dim);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W] -> [B, output_dim]
  int64_t heads;
  torch::Tensor positional_embedding;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(AttentionPool2d);

// config.width is the stem's width; stage i has width * 2^i planes, the output 32 * width channels.
struct ModifiedResNetImpl : torch::nn::Module {
  ModifiedResNetImpl(const VisionConfig& config, int64_t output_dim);
  EncoderOutput forward(const torch::Tensor& pixels);

  VisionConfig config;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  std::vector<torch::nn::ModuleList> stages;
  AttentionPool2d attnpool{nullptr};
};
TORCH_MODULE(ModifiedResNet);

}  // namespace mmlearn
