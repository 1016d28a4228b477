// The text encoder of CLIP (Radford et al., 2021): token and position embeddings, a causal pre-norm
// transformer, a final LayerNorm and a linear projection of the end-of-text token into the joint embedding
// space. Parameter names follow OpenAI CLIP's (token_embedding, positional_embedding, ln_final,
// text_projection).
//
//   mmlearn::TextTransformer text(mmlearn::TextConfig{.context_length = 32, .vocab_size = 1000}, 128, ...);
//   mmlearn::EncoderOutput out = text->forward(ids);   // ids [B, 32] int64 -> out.pooled [B, 128]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>

#include "mmlearn/blocks/encoder_output.h"
#include "mmlearn/blocks/transformer.h"

namespace mmlearn {

struct TextConfig {
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t width = 512;
  int64_t layers = 12;
  int64_t heads = 8;
  double mlp_ratio = 4.0;
  int64_t eot_token_id = 49407;  // the pooled token: the first end-of-text in each row
};

struct TextTransformerImpl : torch::nn::Module {
  TextTransformerImpl(const TextConfig& config, int64_t output_dim, Activation activation,
                      double layer_norm_eps);
  EncoderOutput forward(const torch::Tensor& ids);

  TextConfig config;
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding, text_projection;
  Transformer transformer{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};
};
TORCH_MODULE(TextTransformer);

}  // namespace mmlearn
