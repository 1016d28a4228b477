// Whisper (Radford et al., 2022): a transformer encoder over 30 s of log-mel frames and a transformer decoder
// that writes text tokens while attending to it. Parameters carry OpenAI's names
// (encoder.blocks.0.attn.query, decoder.token_embedding, ...), so OpenAI checkpoints map onto the module key
// for key; Hugging Face's names are translated on load (models/whisper_import.h). WhisperConfig holds
// OpenAI's ModelDimensions.
//
//   mmlearn::Whisper model(mmlearn::whisper_preset("whisper-tiny"));
//   auto audio_features = model->encoder->forward(mel);          // [B, n_mels, 3000] -> [B, 1500, d]
//   mmlearn::WhisperKVCache cache;
//   auto logits = model->decoder->forward(tokens, audio_features, &cache);  // [B, T, vocab]; next call: new
//   tokens only
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/audio/whisper_encoder.h"
#include "mmlearn/blocks/packed_linear.h"

namespace mmlearn {

struct WhisperConfig {
  std::string preset = "custom";
  int64_t n_mels = 80;
  int64_t n_audio_ctx = 1500;  // encoder positions: 3000 mel frames after the stride-2 convolution
  int64_t n_audio_state = 512;
  int64_t n_audio_head = 8;
  int64_t n_audio_layer = 6;
  int64_t n_vocab = 51865;
  int64_t n_text_ctx = 448;
  int64_t n_text_state = 512;
  int64_t n_text_head = 8;
  int64_t n_text_layer = 6;
};

nlohmann::json to_json(const WhisperConfig& config);
// A lower bound of the parameters (transformer matrices, token embedding), for checking a config against its
// weights before building it.
double least_parameters(const WhisperConfig& config);  // OpenAI's "dims" keys, plus "preset"
// Reads to_json's output or OpenAI's dims dict; `where` names the source for errors.
WhisperConfig whisper_config_from_json(const nlohmann::json& json, const std::string& where);
WhisperConfig whisper_preset(
    const std::string& name);  // whisper-tiny ... whisper-large-v3, whisper-tiny-shapes
std::vector<std::string> whisper_preset_names();
// The encoder's part of the dimensions.
WhisperEncoderConfig encoder_config(const WhisperConfig& config);

struct WhisperDecoderImpl : torch::nn::Module {
  explicit WhisperDecoderImpl(const WhisperConfig& config);
  // tokens [B, T] after cache->length earlier ones (or from position 0 without a cache) -> logits [B, T, V].
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& audio_features,
                        WhisperKVCache* cache = nullptr);

  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm ln{nullptr};
};
TORCH_MODULE(WhisperDecoder);

struct WhisperImpl : torch::nn::Module {
  explicit WhisperImpl(const WhisperConfig& config);
  // Teacher-forced logits [B, T, V] of `tokens` given mel [B, n_mels, frames].
  torch::Tensor forward(const torch::Tensor& mel, const torch::Tensor& tokens);

  WhisperConfig config;
  WhisperEncoder encoder{nullptr};
  WhisperDecoder decoder{nullptr};
};
TORCH_MODULE(Whisper);

}  // namespace mmlearn
