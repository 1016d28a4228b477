// Vision Transformer (Dosovitskiy et al., 2020) in CLIP's form: patch embedding by a strided convolution, a
// class token, learned positions, pre-norm transformer, LayerNorm on the class token and a linear projection
// into the joint embedding space. Parameter names follow OpenAI CLIP's `visual.*` keys.
//
//   mmlearn::VisionTransformer vit(mmlearn::VisionConfig{.image_size = 64, .patch_size = 8, .width = 128});
//   mmlearn::EncoderOutput out = vit->forward(pixels);   // pixels [B, 3, 64, 64] -> out.pooled [B,
//   output_dim]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

#include <vector>

#include "mmlearn/blocks/encoder_output.h"
#include "mmlearn/blocks/transformer.h"

namespace mmlearn {

// The image tower's shape. With resnet_layers (bottleneck blocks per stage) it is CLIP's ModifiedResNet
// (vision/modified_resnet.h): width is then the stem's width, heads the attention pool's, and patch_size,
// layers and mlp_ratio are unused.
struct VisionConfig {
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t width = 768;
  int64_t layers = 12;
  int64_t heads = 12;
  double mlp_ratio = 4.0;
  std::vector<int64_t> resnet_layers;
};

struct VisionTransformerImpl : torch::nn::Module {
  VisionTransformerImpl(const VisionConfig& config, int64_t output_dim, Activation activation,
                        double layer_norm_eps);
  EncoderOutput forward(const torch::Tensor& pixels);

  VisionConfig config;
  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding, positional_embedding, proj;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  Transformer transformer{nullptr};
};
TORCH_MODULE(VisionTransformer);

}  // namespace mmlearn
