// An audio–text model in the manner of CLAP (Elizalde et al., 2023; Wu et al., 2023): an audio encoder and a
// text encoder projected into one embedding space and trained with CLIP's symmetric contrastive loss. The
// audio tower is Whisper's encoder (log-mel frames, two convolutions, sinusoidal positions, a transformer),
// mean-pooled over the positions that hold audio, so a speech recognizer's encoder can seed it; the text
// tower is CLIP's. A model directory is config.json + model.safetensors + vocab.json + merges.txt.
//
//   mmlearn::Clap model(mmlearn::clap_preset("clap-tiny"));
//   auto audio = model->encode_audio(mel, samples);  // [B, n_mels, frames], [B] -> [B, E], unit norm
//   auto text = model->encode_text(ids);             // [B, T] -> [B, E], unit norm
#pragma once

#include <torch/nn/module.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/models/whisper.h"
#include "mmlearn/text/bpe.h"
#include "mmlearn/text/text_transformer.h"

namespace mmlearn {

struct ClapAudioConfig {
  int64_t n_mels = 80;
  int64_t n_ctx = 400;  // encoder positions: a window of 2 * n_ctx mel frames (10 ms each)
  int64_t width = 192;
  int64_t heads = 4;
  int64_t layers = 3;
};

struct ClapConfig {
  std::string preset = "custom";
  int64_t embed_dim = 128;
  ClapAudioConfig audio;
  TextConfig text;
  double logit_scale_init = 2.6592;  // ln(1 / 0.07), CLIP's initial temperature
};

nlohmann::json to_json(const ClapConfig& config);
ClapConfig clap_config_from_json(const nlohmann::json& json, const std::string& where);
ClapConfig clap_preset(const std::string& name);
std::vector<std::string> clap_preset_names();
// The 16 kHz samples of one audio window (2 mel frames of 10 ms per position): clips are cut to it.
int64_t clap_window_samples(const ClapAudioConfig& audio);
// The Whisper encoder dimensions of the audio tower (n_vocab and the decoder are unused).
WhisperEncoderConfig whisper_encoder_config(const ClapAudioConfig& audio);

struct ClapImpl : torch::nn::Module {
  explicit ClapImpl(const ClapConfig& config);
  // mel [B, n_mels, 2 * n_ctx] (audio/log_mel.h window_features) and each clip's length in 16 kHz samples
  // [B] (int64), which decides the positions pooled -> [B, E], unit norm.
  torch::Tensor encode_audio(const torch::Tensor& mel, const torch::Tensor& samples);
  torch::Tensor encode_text(const torch::Tensor& ids);  // [B, T] -> [B, E], unit norm

  ClapConfig config;
  WhisperEncoder audio{nullptr};   // registered as "audio"
  torch::Tensor audio_projection;  // [width, embed_dim]
  TextTransformer text{nullptr};
  torch::Tensor logit_scale;
};
TORCH_MODULE(Clap);

// Copies a Whisper model's encoder into the audio tower (a speech recognizer seeding the audio–text model);
// the dimensions must match. `where` names the Whisper model in errors.
void load_audio_tower(Clap& model, const Whisper& whisper, const std::string& where);

struct ClapBundle {
  Clap model{nullptr};
  text::BpeTokenizer tokenizer;
};

void save_clap(const std::filesystem::path& dir, const Clap& model, const text::BpeTokenizer& tokenizer);
ClapBundle load_clap(const std::filesystem::path& dir);  // in evaluation mode

}  // namespace mmlearn
