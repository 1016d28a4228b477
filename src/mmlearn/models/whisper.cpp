#include "mmlearn/models/whisper.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "mmlearn/core/error.h"

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

torch::Tensor causal_mask(int64_t new_tokens, int64_t offset, const torch::TensorOptions& options) {
  // Row i (token offset + i) sees keys 0 .. offset + i.
  return torch::full({new_tokens, offset + new_tokens}, -std::numeric_limits<float>::infinity(), options)
      .triu(offset + 1);
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

void WhisperKVCache::select(const torch::Tensor& index) {
  for (auto* list : {&self_k, &self_v, &cross_k, &cross_v})
    for (auto& t : *list)
      if (t.defined()) t = t.index_select(0, index);
}

torch::Tensor whisper_sinusoids(int64_t length, int64_t channels) {
  check(channels % 2 == 0 && channels >= 4, "sinusoid channels must be even and at least 4");
  const double increment = std::log(10000.0) / static_cast<double>(channels / 2 - 1);
  auto inv_timescales = torch::exp(-increment * torch::arange(channels / 2, torch::kFloat));
  auto scaled_time = torch::arange(length, torch::kFloat).unsqueeze(1) * inv_timescales.unsqueeze(0);
  return torch::cat({torch::sin(scaled_time), torch::cos(scaled_time)}, 1);
}

WhisperAttentionImpl::WhisperAttentionImpl(int64_t width, int64_t heads_) : heads(heads_) {
  query = register_module("query", torch::nn::Linear(width, width));
  key = register_module("key", torch::nn::Linear(torch::nn::LinearOptions(width, width).bias(false)));
  value = register_module("value", torch::nn::Linear(width, width));
  out = register_module("out", torch::nn::Linear(width, width));
}

torch::Tensor WhisperAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& source,
                                            const torch::Tensor& mask, torch::Tensor* k_cache,
                                            torch::Tensor* v_cache, bool cross) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), hd = D / heads;
  auto q = packed_query(x, query->weight, query->bias);
  torch::Tensor k, v;
  if (cross && k_cache && k_cache->defined()) {  // the audio's keys and values do not change while decoding
    k = *k_cache;
    v = *v_cache;
  } else {
    const auto& from = cross ? source : x;
    k = packed_key(from, key->weight, {});
    v = packed_value(from, value->weight, value->bias);
    if (k_cache && !cross && k_cache->defined()) {
      k = torch::cat({*k_cache, k}, 1);
      v = torch::cat({*v_cache, v}, 1);
    }
    if (k_cache) {
      *k_cache = k;
      *v_cache = v;
    }
  }
  const int64_t S = k.size(1);
  // Whisper scales queries and keys by hd^-1/4 each (not the product by hd^-1/2): the same up to rounding.
  const double scale = std::pow(static_cast<double>(hd), -0.25);
  auto qh = q.view({B, T, heads, hd}).permute({0, 2, 1, 3}) * scale;
  auto kh = k.view({B, S, heads, hd}).permute({0, 2, 3, 1}) * scale;
  auto vh = v.view({B, S, heads, hd}).permute({0, 2, 1, 3});
  auto scores = torch::matmul(qh, kh);
  if (mask.defined()) scores = scores + mask;
  auto weights = torch::softmax(scores.to(torch::kFloat), -1).to(q.scalar_type());
  auto o = torch::matmul(weights, vh).permute({0, 2, 1, 3}).reshape({B, T, D});
  return packed_out(o, out->weight, out->bias);
}

WhisperBlockImpl::WhisperBlockImpl(int64_t width, int64_t heads, bool cross_attention) {
  attn = register_module("attn", WhisperAttention(width, heads));
  attn_ln = register_module("attn_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  if (cross_attention) {
    cross_attn = register_module("cross_attn", WhisperAttention(width, heads));
    cross_attn_ln =
        register_module("cross_attn_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  }
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  fc1 = mlp->register_module("0", torch::nn::Linear(width, 4 * width));
  fc2 = mlp->register_module("2", torch::nn::Linear(4 * width, width));
  mlp_ln = register_module("mlp_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
}

torch::Tensor WhisperBlockImpl::forward(torch::Tensor x, const torch::Tensor& audio,
                                        const torch::Tensor& mask, WhisperKVCache* cache, size_t layer) {
  // This layer's entries in the cache (none without one).
  auto slot = [&](std::vector<torch::Tensor> WhisperKVCache::*list) -> torch::Tensor* {
    if (!cache) return nullptr;
    auto& entries = cache->*list;
    if (entries.size() <= layer) entries.resize(layer + 1);
    return &entries[layer];
  };
  x = x + attn->forward(attn_ln(x), {}, mask, slot(&WhisperKVCache::self_k), slot(&WhisperKVCache::self_v),
                        false);
  if (cross_attn)
    x = x + cross_attn->forward(cross_attn_ln(x), audio, {}, slot(&WhisperKVCache::cross_k),
                                slot(&WhisperKVCache::cross_v), true);
  auto h = mlp_ln(x);
  return x + packed_fc2(torch::gelu(packed_fc1(h, fc1->weight, fc1->bias)), fc2->weight, fc2->bias);
}

WhisperEncoderImpl::WhisperEncoderImpl(const WhisperConfig& c) {
  const int64_t d = c.n_audio_state;
  conv1 = register_module("conv1", torch::nn::Conv1d(torch::nn::Conv1dOptions(c.n_mels, d, 3).padding(1)));
  conv2 = register_module("conv2", torch::nn::Conv1d(torch::nn::Conv1dOptions(d, d, 3).stride(2).padding(1)));
  positional_embedding = register_buffer("positional_embedding", whisper_sinusoids(c.n_audio_ctx, d));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_audio_layer; ++i) blocks->push_back(WhisperBlock(d, c.n_audio_head, false));
  ln_post = register_module("ln_post", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
}

namespace {
// A kernel-3, padding-1 convolution over time of x [B, T, C_in] -> [B, T / stride, C_out], as one matrix
// product over the unfolded windows; weight [C_out, C_in, 3] (Conv1d's layout).
torch::Tensor time_major_conv1d(const torch::Tensor& x, const torch::Tensor& weight,
                                const torch::Tensor& bias, int64_t stride) {
  auto padded = torch::constant_pad_nd(x, {0, 0, 1, 1});          // [B, T + 2, C_in]
  auto windows = padded.unfold(1, 3, stride);                     // [B, T_out, C_in, 3]
  auto flat = windows.reshape({x.size(0), windows.size(1), -1});  // C_in-major, as weight.view(C_out, -1)
  return torch::addmm(bias, flat.reshape({-1, flat.size(2)}), weight.reshape({weight.size(0), -1}).t())
      .view({x.size(0), windows.size(1), weight.size(0)});
}
}  // namespace

torch::Tensor WhisperEncoderImpl::forward(const torch::Tensor& mel) {
  check(mel.dim() == 3 && mel.size(1) == conv1->options.in_channels() &&
            mel.size(2) == 2 * positional_embedding.size(0),
        "Whisper's encoder takes log-mel features [batch, ", conv1->options.in_channels(), ", ",
        2 * positional_embedding.size(0), "], got ", mel.sizes());
  torch::Tensor x;
  if (torch::GradMode::is_enabled() && conv1->weight.requires_grad()) {
    // Training: the convolutions as matrix products over time-major windows. libtorch 1.13's oneDNN
    // convolution backward returns wrong weight gradients here (the gradient reaching it comes through the
    // permute below), which left the stem all but untrained; inference keeps the convolution.
    x = torch::gelu(time_major_conv1d(mel.transpose(1, 2), conv1->weight, conv1->bias, 1));
    x = torch::gelu(time_major_conv1d(x, conv2->weight, conv2->bias, 2));
  } else {
    x = torch::gelu(conv1(mel));
    x = torch::gelu(conv2(x)).permute({0, 2, 1});
  }
  // The residual stream stays in fp32 (under bf16 autocast the convolutions return bf16, and LayerNorm on
  // the CPU wants its input in its weights' type).
  x = x.to(positional_embedding.scalar_type()) + positional_embedding;
  size_t layer = 0;
  for (const auto& block : *blocks) x = block->as<WhisperBlock>()->forward(x, {}, {}, nullptr, layer++);
  return ln_post(x);
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
  return torch::matmul(x, token_embedding->weight.to(x.scalar_type()).t()).to(torch::kFloat);
}

WhisperImpl::WhisperImpl(const WhisperConfig& c) : config(c) {
  encoder = register_module("encoder", WhisperEncoder(c));
  decoder = register_module("decoder", WhisperDecoder(c));
}

torch::Tensor WhisperImpl::forward(const torch::Tensor& mel, const torch::Tensor& tokens) {
  return decoder->forward(tokens, encoder->forward(mel));
}

}  // namespace mmlearn
