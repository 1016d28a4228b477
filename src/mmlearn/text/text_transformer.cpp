#include "mmlearn/text/text_transformer.h"

#include <cmath>

namespace mmlearn {

TextTransformerImpl::TextTransformerImpl(const TextConfig& c, int64_t output_dim, Activation activation,
                                         double layer_norm_eps)
    : config(c) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.width));
  positional_embedding =
      register_parameter("positional_embedding", torch::empty({c.context_length, c.width}));
  transformer =
      register_module("transformer", Transformer(transformer_config(c, activation, layer_norm_eps)));
  ln_final = register_module(
      "ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width}).eps(layer_norm_eps)));
  text_projection = register_parameter("text_projection", torch::empty({c.width, output_dim}));

  // CLIP's initialisation (openai/CLIP model.py, initialize_parameters).
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(token_embedding->weight, 0, 0.02);
  torch::nn::init::normal_(positional_embedding, 0, 0.01);
  const double proj_std = std::pow(c.width, -0.5) * std::pow(2.0 * c.layers, -0.5);
  const double attn_std = std::pow(c.width, -0.5), fc_std = std::pow(2.0 * c.width, -0.5);
  for (const auto& block : *transformer->resblocks) {
    auto b = block->as<ResidualAttentionBlock>();
    torch::nn::init::normal_(b->attn->in_proj_weight, 0, attn_std);
    torch::nn::init::normal_(b->attn->out_proj->weight, 0, proj_std);
    torch::nn::init::normal_(b->mlp->c_fc->weight, 0, fc_std);
    torch::nn::init::normal_(b->mlp->c_proj->weight, 0, proj_std);
  }
  torch::nn::init::normal_(text_projection, 0, attn_std);
}

EncoderOutput TextTransformerImpl::forward(const torch::Tensor& ids) {
  TORCH_CHECK(ids.dim() == 2 && ids.size(1) <= config.context_length,
              "expected token ids [B, T<=", config.context_length, "], got ", ids.sizes());
  const int64_t T = ids.size(1);
  auto x = token_embedding(ids) + positional_embedding.slice(0, 0, T);
  x = ln_final(transformer(x, causal_mask(T, x.options())));
  // Pool at the first end-of-text token; a row without one (over-long, truncated by the caller) pools its
  // last.
  auto is_eot = ids == config.eot_token_id;
  auto first_eot = is_eot.to(torch::kInt).argmax(1);
  auto eot = torch::where(is_eot.any(1), first_eot, torch::full_like(first_eot, T - 1));
  auto pooled = torch::matmul(x.index({torch::arange(ids.size(0), ids.options()), eot}), text_projection);
  auto mask = torch::arange(T, ids.options()).unsqueeze(0) <= eot.unsqueeze(1);
  return {x, mask, pooled};
}

}  // namespace mmlearn
