// How a text decoder sees an encoder: the three published designs, behind one call that turns the encoder's
// tokens into the decoder's Conditioning (heads/text_decoder.h).
//   cross_attention  BLIP's and CoCa's captioners: the tokens, projected to the decoder's width, are memory
//                    that every decoder block cross-attends to.
//   prefix           LLaVA (1.5's two-layer MLP projector): the projected tokens go before the text, as
//                    embeddings the decoder reads like words.
//   queries          BLIP-2's Q-Former, small: a few learned queries cross-attend to the tokens through a
//                    short transformer, and only they, normalized and projected, go before the text — a
//                    fixed-length summary however many tokens the encoder makes.
// Nothing here knows the modality: image patches and Whisper's audio frames are both [B, N, D] tokens.
//
//   mmlearn::Connector connector({.kind = ConnectorKind::prefix, .encoder_width = 192, .width = 256});
//   mmlearn::Conditioning c = connector->forward(encoder_tokens, mask);  // [B, N, 192], [B, N] or {}
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <nlohmann/json.hpp>
#include <string>

#include "mmlearn/heads/text_decoder.h"

namespace mmlearn {

enum class ConnectorKind { cross_attention, prefix, queries };
ConnectorKind parse_connector(const std::string& name);  // a UsageError names the choices
std::string connector_name(ConnectorKind kind);

struct ConnectorConfig {
  ConnectorKind kind = ConnectorKind::cross_attention;
  int64_t encoder_width = 0;  // the encoder's token width
  int64_t width = 0;          // the decoder's
  int64_t queries = 16;       // the queries connector's learned queries
  int64_t query_layers = 2;   // and its transformer's blocks
  int64_t heads = 4;          // and their heads
};
nlohmann::json to_json(const ConnectorConfig& config);
ConnectorConfig connector_config_from_json(const nlohmann::json& json, const std::string& where);

struct ConnectorImpl : torch::nn::Module {
  explicit ConnectorImpl(const ConnectorConfig& config);
  // tokens [B, N, encoder_width], mask [B, N] (true where real) or undefined.
  Conditioning forward(const torch::Tensor& tokens, const torch::Tensor& mask = {});
  // Whether the decoder must cross-attend (cross_attention) and how many prefix positions it gets for N
  // encoder tokens.
  bool uses_cross_attention() const { return config.kind == ConnectorKind::cross_attention; }
  int64_t prefix_length(int64_t encoder_tokens) const;

  ConnectorConfig config;
  torch::nn::LayerNorm ln{nullptr};   // over the encoder's tokens, as they arrive
  torch::nn::Linear proj{nullptr};    // encoder width -> decoder width
  torch::nn::Linear proj_2{nullptr};  // prefix: the MLP's second layer; queries: the output projection
  torch::Tensor query_tokens;         // queries: [1, Q, width]
  torch::nn::ModuleList query_blocks{nullptr};
  torch::nn::LayerNorm ln_queries{nullptr};
};
TORCH_MODULE(Connector);

}  // namespace mmlearn
