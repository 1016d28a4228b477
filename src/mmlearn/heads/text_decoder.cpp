#include "mmlearn/heads/text_decoder.h"

#include <torch/torch.h>

#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"

namespace mmlearn {

nlohmann::json to_json(const TextDecoderConfig& c) {
  return {{"vocab_size", c.vocab_size},
          {"context", c.context},
          {"width", c.width},
          {"layers", c.layers},
          {"heads", c.heads},
          {"mlp_ratio", c.mlp_ratio},
          {"cross_attention", c.cross_attention}};
}

TextDecoderConfig text_decoder_config_from_json(const nlohmann::json& j, const std::string& where) {
  check(j.is_object(), where, ": the decoder's config must be a JSON object");
  check_known_fields(j, {"vocab_size", "context", "width", "layers", "heads", "mlp_ratio", "cross_attention"},
                     where, "decoder ");
  TextDecoderConfig c;
  read_field(j, "vocab_size", c.vocab_size, where);
  read_field(j, "context", c.context, where);
  read_field(j, "width", c.width, where);
  read_field(j, "layers", c.layers, where);
  read_field(j, "heads", c.heads, where);
  read_field(j, "mlp_ratio", c.mlp_ratio, where);
  read_field(j, "cross_attention", c.cross_attention, where);
  for (const auto& [name, value, most] : {std::tuple{"vocab_size", c.vocab_size, 1'000'000},
                                          {"context", c.context, 65536},
                                          {"width", c.width, 65536},
                                          {"layers", c.layers, 1024},
                                          {"heads", c.heads, 1024}})
    check(value >= 1 && value <= most, where, ": decoder field \"", name, "\" must be in [1, ", most,
          "] (got ", value, ")");
  check(c.width % c.heads == 0, where, ": decoder width ", c.width, " is not divisible by its ", c.heads,
        " heads");
  check(c.mlp_ratio > 0 && c.mlp_ratio <= 64, where, ": decoder field \"mlp_ratio\" must be in (0, 64] (got ",
        c.mlp_ratio, ")");
  return c;
}

TextDecoderImpl::TextDecoderImpl(const TextDecoderConfig& c) : config(c) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.width));
  positional_embedding = register_parameter("positional_embedding", torch::empty({c.context, c.width}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.layers; ++i)
    blocks->push_back(DecoderBlock(c.width, c.heads, c.mlp_ratio, c.cross_attention));
  ln_final = register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width})));
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(token_embedding->weight, 0.0, 0.02);  // GPT-2's initialization
  torch::nn::init::normal_(positional_embedding, 0.0, 0.01);
}

torch::Tensor TextDecoderImpl::forward(const torch::Tensor& tokens, const Conditioning& conditioning,
                                       KVCache* cache) {
  const bool first = !cache || cache->empty();
  auto x = token_embedding(tokens);
  int64_t prefix = 0;
  if (first && conditioning.prefix.defined()) {
    prefix = conditioning.prefix.size(1);
    x = torch::cat({conditioning.prefix.to(x.scalar_type()), x}, 1);
  }
  const int64_t offset = cache ? cache->length : 0, T = x.size(1);
  check(offset + T <= config.context, "the text decoder holds ", config.context,
        " positions (prefix and tokens); got ", offset + T);
  x = x + positional_embedding.narrow(0, offset, T);
  const auto mask = T > 1 ? causal_mask(T, offset, x.options()) : torch::Tensor();
  if (cache && cache->layers.empty()) cache->layers.resize(blocks->size());
  for (size_t i = 0; i < blocks->size(); ++i)
    x = blocks[i]->as<DecoderBlock>()->forward(x, conditioning.memory, conditioning.memory_mask, mask,
                                               cache ? &cache->layers[i] : nullptr);
  if (cache) cache->length += T;
  x = ln_final(x.narrow(1, prefix, T - prefix));
  return torch::matmul(x, token_embedding->weight.t());
}

}  // namespace mmlearn
