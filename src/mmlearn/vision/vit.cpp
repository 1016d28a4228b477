#include "mmlearn/vision/vit.h"

#include <cmath>

namespace mmlearn {

VisionTransformerImpl::VisionTransformerImpl(const VisionConfig& c, int64_t output_dim, Activation activation,
                                             double layer_norm_eps)
    : config(c) {
  TORCH_CHECK(c.image_size % c.patch_size == 0, "image_size ", c.image_size,
              " is not a multiple of patch_size ", c.patch_size);
  const int64_t grid = c.image_size / c.patch_size;
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.width));  // CLIP's initialisation
  conv1 = register_module(
      "conv1",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(3, c.width, c.patch_size).stride(c.patch_size).bias(false)));
  class_embedding = register_parameter("class_embedding", scale * torch::randn({c.width}));
  positional_embedding =
      register_parameter("positional_embedding", scale * torch::randn({grid * grid + 1, c.width}));
  auto ln = torch::nn::LayerNormOptions({c.width}).eps(layer_norm_eps);
  ln_pre = register_module("ln_pre", torch::nn::LayerNorm(ln));
  transformer =
      register_module("transformer", Transformer(transformer_config(c, activation, layer_norm_eps)));
  ln_post = register_module("ln_post", torch::nn::LayerNorm(ln));
  proj = register_parameter("proj", scale * torch::randn({c.width, output_dim}));
}

EncoderOutput VisionTransformerImpl::forward(const torch::Tensor& pixels) {
  TORCH_CHECK(pixels.dim() == 4 && pixels.size(1) == 3 && pixels.size(2) == config.image_size &&
                  pixels.size(3) == config.image_size,
              "expected pixels [B, 3, ", config.image_size, ", ", config.image_size, "], got ",
              pixels.sizes());
  const int64_t B = pixels.size(0);
  auto x = conv1(pixels).flatten(2).transpose(1, 2);  // [B, grid², D]
  x = torch::cat({class_embedding.view({1, 1, -1}).expand({B, 1, config.width}), x}, 1) +
      positional_embedding;
  x = transformer(ln_pre(x));
  auto pooled = torch::matmul(ln_post(x.select(1, 0)), proj);
  auto mask = torch::ones({B, x.size(1)}, torch::TensorOptions().dtype(torch::kBool).device(x.device()));
  return {x, mask, pooled};
}

}  // namespace mmlearn
