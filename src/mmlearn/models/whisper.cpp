#include "mmlearn/models/whisper.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "mmlearn/blocks/transformer.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/precision.h"

namespace mmlearn {

namespace {

const std::map<std::string, WhisperConfig>& presets() {
  // OpenAI's published sizes (whisper/__init__.py checkpoints' dims), and a small one for the shapes world.
  static const std::map<std::string, WhisperConfig> table = [] {
    std::map<std::string, WhisperConfig> t;
    auto add = [&](const std::string& name, int64_t n_mels, int64_t width, int64_t heads, int64_t layers,
                   int64_t n_vocab, int64_t decoder_layers = -1) {
      WhisperConfig c;
      c.preset = name;
      c.n_mels = n_mels;
      c.n_audio_state = c.n_text_state = width;
      c.n_audio_head = c.n_text_head = heads;
      c.n_audio_layer = layers;
      c.n_text_layer = decoder_layers < 0 ? layers : decoder_layers;
      c.n_vocab = n_vocab;
      t[name] = c;
    };
    add("whisper-tiny", 80, 384, 6, 4, 51865);
    add("whisper-tiny.en", 80, 384, 6, 4, 51864);
    add("whisper-base", 80, 512, 8, 6, 51865);
    add("whisper-base.en", 80, 512, 8, 6, 51864);
    add("whisper-small", 80, 768, 12, 12, 51865);
    add("whisper-small.en", 80, 768, 12, 12, 51864);
    add("whisper-medium", 80, 1024, 16, 24, 51865);
    add("whisper-medium.en", 80, 1024, 16, 24, 51864);
    add("whisper-large-v2", 80, 1280, 20, 32, 51865);
    add("whisper-large-v3", 128, 1280, 20, 32, 51866);
    add("whisper-large-v3-turbo", 128, 1280, 20, 32, 51866, 4);
    // Trains from scratch on the shapes world's spoken captions in minutes on a CPU: 8 s windows (400
    // encoder positions), the vocabulary learned from the captions (n_vocab is set when it is).
    add("whisper-tiny-shapes", 80, 192, 4, 3, 2048);
    t["whisper-tiny-shapes"].n_audio_ctx = 400;
    t["whisper-tiny-shapes"].n_text_ctx = 64;
    return t;
  }();
  return table;
}

}  // namespace

double least_parameters(const WhisperConfig& c) {
  const double d = static_cast<double>(c.n_audio_state), t = static_cast<double>(c.n_text_state);
  return static_cast<double>(c.n_audio_layer) * 12 * d * d +
         static_cast<double>(c.n_text_layer) * 16 * t * t + static_cast<double>(c.n_vocab) * t;
}

nlohmann::json to_json(const WhisperConfig& c) {
  return {{"preset", c.preset},
          {"n_mels", c.n_mels},
          {"n_audio_ctx", c.n_audio_ctx},
          {"n_audio_state", c.n_audio_state},
          {"n_audio_head", c.n_audio_head},
          {"n_audio_layer", c.n_audio_layer},
          {"n_vocab", c.n_vocab},
          {"n_text_ctx", c.n_text_ctx},
          {"n_text_state", c.n_text_state},
          {"n_text_head", c.n_text_head},
          {"n_text_layer", c.n_text_layer}};
}

WhisperConfig whisper_config_from_json(const nlohmann::json& json, const std::string& where) {
  check(json.is_object(), where, ": Whisper dimensions must be a JSON object");
  WhisperConfig c;
  std::map<std::string, int64_t*> fields = {{"n_mels", &c.n_mels},
                                            {"n_audio_ctx", &c.n_audio_ctx},
                                            {"n_audio_state", &c.n_audio_state},
                                            {"n_audio_head", &c.n_audio_head},
                                            {"n_audio_layer", &c.n_audio_layer},
                                            {"n_vocab", &c.n_vocab},
                                            {"n_text_ctx", &c.n_text_ctx},
                                            {"n_text_state", &c.n_text_state},
                                            {"n_text_head", &c.n_text_head},
                                            {"n_text_layer", &c.n_text_layer}};
  for (auto& [name, field] : fields) {
    auto it = json.find(name);
    check(it != json.end(), where, ": field \"", name, "\" is missing");
    check(it->is_number_integer() && it->get<int64_t>() > 0 && it->get<int64_t>() <= 1'000'000, where,
          ": field \"", name, "\" must be a positive integer, got ", it->dump());
    *field = it->get<int64_t>();
  }
  for (auto& [key, value] : json.items())
    check(key == "preset" || fields.count(key), where, ": unknown field \"", key, "\"");
  if (json.contains("preset")) {
    check(json["preset"].is_string(), where, ": field \"preset\" must be a string");
    c.preset = json["preset"].get<std::string>();
  }
  check(c.n_audio_state % c.n_audio_head == 0, where, ": n_audio_state ", c.n_audio_state,
        " is not divisible by n_audio_head ", c.n_audio_head);
  check(c.n_text_state % c.n_text_head == 0, where, ": n_text_state ", c.n_text_state,
        " is not divisible by n_text_head ", c.n_text_head);
  check(c.n_mels <= 512 && c.n_audio_ctx <= 100'000 && c.n_text_ctx <= 100'000, where,
        ": implausible dimensions");
  return c;
}

WhisperConfig whisper_preset(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string names;
    for (const auto& n : whisper_preset_names()) names += (names.empty() ? "" : ", ") + n;
    throw UsageError(str_cat("unknown Whisper preset \"", name, "\" (known: ", names, ")"));
  }
  return it->second;
}

std::vector<std::string> whisper_preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, config] : presets()) names.push_back(name);
  return names;
}

WhisperEncoderConfig encoder_config(const WhisperConfig& c) {
  return {c.n_mels, c.n_audio_ctx, c.n_audio_state, c.n_audio_head, c.n_audio_layer};
}

WhisperDecoderImpl::WhisperDecoderImpl(const WhisperConfig& c) {
  const int64_t d = c.n_text_state;
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.n_vocab, d));
  positional_embedding = register_parameter("positional_embedding", torch::empty({c.n_text_ctx, d}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_text_layer; ++i) blocks->push_back(WhisperBlock(d, c.n_text_head, true));
  ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(token_embedding->weight, 0.0, 0.02);
  torch::nn::init::normal_(positional_embedding, 0.0, 0.01);
}

torch::Tensor WhisperDecoderImpl::forward(const torch::Tensor& tokens, const torch::Tensor& audio_features,
                                          WhisperKVCache* cache) {
  const int64_t offset = cache ? cache->length : 0, T = tokens.size(1);
  check(offset + T <= positional_embedding.size(0), "Whisper's decoder holds ", positional_embedding.size(0),
        " tokens; got ", offset + T);
  auto x = token_embedding(tokens) + positional_embedding.narrow(0, offset, T);
  x = x.to(audio_features.scalar_type());
  auto mask = T > 1 ? causal_mask(T, offset, x.options()) : torch::Tensor();
  size_t layer = 0;
  for (const auto& block : *blocks)
    x = block->as<WhisperBlock>()->forward(x, audio_features, mask, cache, layer++);
  if (cache) cache->length += T;
  x = ln(x);
  return full_precision(torch::matmul(x, token_embedding->weight.to(x.scalar_type()).t()));
}

WhisperImpl::WhisperImpl(const WhisperConfig& c) : config(c) {
  encoder = register_module("encoder", WhisperEncoder(encoder_config(c)));
  decoder = register_module("decoder", WhisperDecoder(c));
}

torch::Tensor WhisperImpl::forward(const torch::Tensor& mel, const torch::Tensor& tokens) {
  return decoder->forward(tokens, encoder->forward(mel));
}

}  // namespace mmlearn
