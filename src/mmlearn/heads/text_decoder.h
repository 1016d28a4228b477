// A causal transformer text decoder conditioned on an encoder (captioning, question answering): token and
// learned position embeddings, a stack of decoder blocks (blocks/decoder_block.h), a final LayerNorm and the
// output layer tied to the token embedding (GPT-2's, BLIP's and CoCa's choice). How it sees the encoder is
// the connector's business (heads/connector.h): as memory its blocks cross-attend to, or as a prefix of
// embeddings before the first token, or both.
//
//   mmlearn::TextDecoder decoder(mmlearn::TextDecoderConfig{.vocab_size = 2048, .cross_attention = true});
//   mmlearn::KVCache cache;
//   auto logits = decoder->forward(tokens, conditioning, &cache);  // [B, T, vocab]; later calls: new tokens
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include <nlohmann/json.hpp>
#include <string>

#include "mmlearn/blocks/decoder_block.h"

namespace mmlearn {

struct TextDecoderConfig {
  int64_t vocab_size = 0;
  int64_t context = 128;  // positions: the prefix (if any) and the tokens together
  int64_t width = 256;
  int64_t layers = 4;
  int64_t heads = 4;
  double mlp_ratio = 4.0;
  bool cross_attention = true;
};
nlohmann::json to_json(const TextDecoderConfig& config);
// Reads to_json's output; `where` names the source for errors (missing, mistyped or unknown fields).
TextDecoderConfig text_decoder_config_from_json(const nlohmann::json& json, const std::string& where);

// What the decoder is conditioned on: memory [B, N, D] with memory_mask [B, N] (true where real) for
// cross-attention, and a prefix [B, P, D] of embeddings placed before the first token.
struct Conditioning {
  torch::Tensor memory, memory_mask, prefix;
};

struct TextDecoderImpl : torch::nn::Module {
  explicit TextDecoderImpl(const TextDecoderConfig& config);
  // Logits [B, T, vocab] of tokens [B, T]. Without a cache, or with an empty one, the prefix (if any) comes
  // first; with a cache holding earlier positions, `tokens` follow them and the conditioning's memory and
  // prefix are already in it (they may be left undefined).
  torch::Tensor forward(const torch::Tensor& tokens, const Conditioning& conditioning,
                        KVCache* cache = nullptr);

  TextDecoderConfig config;
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding;  // [context, width]
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};
};
TORCH_MODULE(TextDecoder);

}  // namespace mmlearn
