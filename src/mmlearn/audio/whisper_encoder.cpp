#include "mmlearn/audio/whisper_encoder.h"

#include <torch/torch.h>

#include <cmath>

#include "mmlearn/core/error.h"
#include "mmlearn/core/precision.h"

namespace mmlearn {

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
  auto weights = torch::softmax(full_precision(scores), -1).to(q.scalar_type());
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

WhisperEncoderImpl::WhisperEncoderImpl(const WhisperEncoderConfig& c) {
  const int64_t d = c.n_state;
  conv1 = register_module("conv1", torch::nn::Conv1d(torch::nn::Conv1dOptions(c.n_mels, d, 3).padding(1)));
  conv2 = register_module("conv2", torch::nn::Conv1d(torch::nn::Conv1dOptions(d, d, 3).stride(2).padding(1)));
  positional_embedding = register_buffer("positional_embedding", whisper_sinusoids(c.n_ctx, d));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_layer; ++i) blocks->push_back(WhisperBlock(d, c.n_head, false));
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

}  // namespace mmlearn
