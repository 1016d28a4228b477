#include "mmlearn/models/blip.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "mmlearn/core/error.h"
#include "mmlearn/models/clip_pixels.h"
#include "mmlearn/text/clean_up.h"

namespace mmlearn {
namespace fs = std::filesystem;

BlipVisionImpl::BlipVisionImpl(const BlipVisionConfig& c) : config(c) {
  const int64_t grid = c.image_size / c.patch_size;
  patch_embed = register_module(
      "patch_embed",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(3, c.width, c.patch_size).stride(c.patch_size)));
  class_embedding = register_parameter("class_embedding", torch::zeros({c.width}));
  position_embedding = register_parameter("position_embedding", torch::zeros({grid * grid + 1, c.width}));
  transformer = register_module(
      "transformer", Transformer(TransformerConfig{.width = c.width,
                                                   .layers = c.layers,
                                                   .heads = c.heads,
                                                   .mlp_ratio = double(c.intermediate) / double(c.width),
                                                   .activation = Activation::gelu,
                                                   .layer_norm_eps = c.layer_norm_eps}));
  ln_post = register_module(
      "ln_post", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width}).eps(c.layer_norm_eps)));
}

torch::Tensor BlipVisionImpl::forward(const torch::Tensor& pixels) {
  TORCH_CHECK(pixels.dim() == 4 && pixels.size(1) == 3 && pixels.size(2) == config.image_size &&
                  pixels.size(3) == config.image_size,
              "expected pixels [B, 3, ", config.image_size, ", ", config.image_size, "], got ",
              pixels.sizes());
  const int64_t B = pixels.size(0);
  auto x = patch_embed(pixels).flatten(2).transpose(1, 2);  // [B, grid², D]
  x = torch::cat({class_embedding.view({1, 1, -1}).expand({B, 1, config.width}), x}, 1) + position_embedding;
  return ln_post(transformer(x));
}

BertAttentionImpl::BertAttentionImpl(int64_t width, int64_t kv_width, int64_t heads_, double eps)
    : heads(heads_) {
  TORCH_CHECK(width % heads == 0, "attention width ", width, " is not divisible by ", heads, " heads");
  query = register_module("query", torch::nn::Linear(width, width));
  key = register_module("key", torch::nn::Linear(kv_width, width));
  value = register_module("value", torch::nn::Linear(kv_width, width));
  out = register_module("out", torch::nn::Linear(width, width));
  ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(eps)));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& k,
                                         const torch::Tensor& v, const torch::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), S = k.size(1), hd = D / heads;
  const auto q = query(x).view({B, T, heads, hd}).transpose(1, 2);
  auto scores = torch::matmul(q, k.view({B, S, heads, hd}).permute({0, 2, 3, 1})) / std::sqrt(double(hd));
  if (mask.defined()) scores = scores + mask;
  const auto context = torch::matmul(torch::softmax(scores, -1), v.view({B, S, heads, hd}).transpose(1, 2));
  return ln(out(context.transpose(1, 2).reshape({B, T, D})) + x);
}

BertLayerImpl::BertLayerImpl(const BlipTextConfig& c, int64_t memory_width) {
  self_attn = register_module("self_attn", BertAttention(c.width, c.width, c.heads, c.layer_norm_eps));
  cross_attn = register_module("cross_attn", BertAttention(c.width, memory_width, c.heads, c.layer_norm_eps));
  mlp_in = register_module("mlp_in", torch::nn::Linear(c.width, c.intermediate));
  mlp_out = register_module("mlp_out", torch::nn::Linear(c.intermediate, c.width));
  ln_mlp = register_module(
      "ln_mlp", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width}).eps(c.layer_norm_eps)));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& self_mask,
                                     const torch::Tensor& memory, LayerCache* cache) {
  const auto [k, v] = cached_self_attention(cache, self_attn->key(x), self_attn->value(x));
  auto h = self_attn(x, k, v, self_mask);
  const auto [ck, cv] = cached_cross_attention(cache, [&] {
    TORCH_CHECK(memory.defined(), "a BLIP text layer needs the encoder's tokens");
    return std::pair{cross_attn->key(memory), cross_attn->value(memory)};
  });
  h = cross_attn(h, ck, cv, torch::Tensor());
  const auto inner = torch::gelu(mlp_in(h));
  return ln_mlp(mlp_out(inner) + h);
}

BlipTextImpl::BlipTextImpl(const BlipTextConfig& c, int64_t memory_width, bool lm_head) : config(c) {
  word_embeddings = register_module("word_embeddings", torch::nn::Embedding(c.vocab_size, c.width));
  position_embeddings =
      register_module("position_embeddings", torch::nn::Embedding(c.max_positions, c.width));
  const auto ln = torch::nn::LayerNormOptions({c.width}).eps(c.layer_norm_eps);
  ln_embed = register_module("ln_embed", torch::nn::LayerNorm(ln));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.layers; ++i) layers->push_back(BertLayer(c, memory_width));
  if (lm_head) {
    head_dense = register_module("head_dense", torch::nn::Linear(c.width, c.width));
    head_ln = register_module("head_ln", torch::nn::LayerNorm(ln));
    head_bias = register_parameter("head_bias", torch::zeros({c.vocab_size}));
  }
}

torch::Tensor BlipTextImpl::forward(const torch::Tensor& ids, bool causal, const torch::Tensor& memory,
                                    KVCache* cache) {
  const int64_t offset = cache ? cache->length : 0, T = ids.size(1);
  TORCH_CHECK(offset + T <= config.max_positions, "BLIP text: ", offset + T, " positions, more than the ",
              config.max_positions, " the model has");
  const auto positions = torch::arange(offset, offset + T, ids.options());
  auto x = ln_embed(word_embeddings(ids) + position_embeddings(positions).unsqueeze(0));
  const auto mask = causal ? causal_mask(T, offset, x.options()) : torch::Tensor();
  if (cache && cache->layers.empty()) cache->layers.resize(layers->size());
  for (size_t i = 0; i < layers->size(); ++i)
    x = layers[i]->as<BertLayer>()->forward(x, mask, memory, cache ? &cache->layers[i] : nullptr);
  if (cache) cache->length += T;
  return x;
}

torch::Tensor BlipTextImpl::logits(const torch::Tensor& hidden) {
  TORCH_CHECK(head_dense, "this BLIP text model has no LM head");
  // Under bf16 autocast the dense layer hands over bf16, which LayerNorm's fp32 weights do not take.
  const auto h = torch::gelu(head_dense(hidden)).to(torch::kFloat);
  return torch::nn::functional::linear(head_ln(h), word_embeddings->weight, head_bias);
}

BlipImpl::BlipImpl(const BlipConfig& c) : config(c) {
  vision = register_module("vision", BlipVision(c.vision));
  if (c.task == "vqa") {
    text_encoder = register_module("text_encoder", BlipText(c.text, c.vision.width, /*lm_head=*/false));
    text_decoder = register_module("text_decoder", BlipText(c.text, c.text.width, /*lm_head=*/true));
  } else {
    text_decoder = register_module("text_decoder", BlipText(c.text, c.text.encoder_width, /*lm_head=*/true));
  }
}

torch::Tensor load_blip_pixels(const BlipBundle& blip, const fs::path& image) {
  return load_reference_pixels(blip.preprocess, image);
}

std::vector<int64_t> blip_caption_start(const BlipBundle& blip, const std::string& prompt) {
  std::vector<int64_t> ids = {blip.model->config.text.bos_token_id};
  const auto words = blip.tokenizer.encode(prompt);
  ids.insert(ids.end(), words.begin(), words.end());
  return ids;
}

namespace {

// What the decoder cross-attends to: the image tokens (captioner), or the questions (of one length: rows
// are grouped so that nothing is padded) encoded over them (question answerer).
torch::Tensor decoder_memory(BlipBundle& blip, const torch::Tensor& image_tokens,
                             const std::vector<std::vector<int64_t>>& questions) {
  if (blip.model->config.task != "vqa") return image_tokens;
  std::vector<torch::Tensor> ids;
  for (const auto& q : questions) ids.push_back(torch::tensor(q));
  return blip.model->text_encoder->forward(torch::stack(ids).to(image_tokens.device()), /*causal=*/false,
                                           image_tokens);
}

// The decoder's starts and what it cross-attends to, for images [B, ...] and their prompts; UsageErrors for
// a prompt or question the model cannot take.
struct Starts {
  std::vector<std::vector<int64_t>> starts, questions;
};

Starts starts_for(const BlipBundle& blip, const std::vector<std::string>& prompts) {
  const auto& c = blip.model->config;
  Starts s;
  for (const auto& prompt : prompts) {
    if (c.task == "vqa") {
      if (prompt.find_first_not_of(" \t\n\r") == std::string::npos)
        throw UsageError("the question is empty: a question answerer needs --question");
      auto q = blip.tokenizer.encode_with_specials(prompt);
      if (static_cast<int64_t>(q.size()) > c.text.max_positions)
        throw UsageError(str_cat("the question \"", prompt, "\" is ", q.size() - 2,
                                 " tokens: longer than the model can read (", c.text.max_positions - 2,
                                 " at most)"));
      s.questions.push_back(std::move(q));
      s.starts.push_back({c.text.bos_token_id});
    } else {
      auto start = blip_caption_start(blip, prompt);
      if (static_cast<int64_t>(start.size()) >= c.text.max_positions)
        throw UsageError(str_cat("the prompt \"", prompt, "\" is ", start.size() - 1,
                                 " tokens: longer than the model can continue (", c.text.max_positions - 2,
                                 " at most)"));
      s.starts.push_back(std::move(start));
    }
    for (int64_t id : s.starts.back())
      check(id >= 0 && id < c.text.vocab_size, "BLIP: token id ", id, " is outside the vocabulary of ",
            c.text.vocab_size);
  }
  return s;
}

}  // namespace

std::vector<GeneratedText> blip_generate(BlipBundle& blip, const torch::Tensor& pixels,
                                         const std::vector<std::string>& prompts,
                                         const GenerationOptions& o) {
  check_generation_options(o);
  check(static_cast<int64_t>(prompts.size()) == pixels.size(0), "BLIP: ", pixels.size(0), " images but ",
        prompts.size(), " prompts");
  const Starts s = starts_for(blip, prompts);
  c10::InferenceMode inference;  // where the vision layers run on weights packed once for oneDNN
  auto& m = *blip.model;
  const auto image_tokens = m.vision->forward(pixels);
  // Rows whose starts (and questions) have the same lengths are written together.
  std::map<std::pair<size_t, size_t>, std::vector<int64_t>> groups;
  for (size_t i = 0; i < s.starts.size(); ++i)
    groups[{s.starts[i].size(), s.questions.empty() ? 0 : s.questions[i].size()}].push_back(
        static_cast<int64_t>(i));
  std::vector<GeneratedText> out(prompts.size());
  for (const auto& [lengths, rows] : groups) {
    const size_t length = lengths.first;
    const auto index = torch::tensor(rows).to(pixels.device());
    std::vector<std::vector<int64_t>> questions;
    std::vector<int64_t> flat;
    for (int64_t r : rows) {
      if (!s.questions.empty()) questions.push_back(s.questions[static_cast<size_t>(r)]);
      flat.insert(flat.end(), s.starts[static_cast<size_t>(r)].begin(),
                  s.starts[static_cast<size_t>(r)].end());
    }
    const auto memory = decoder_memory(blip, image_tokens.index_select(0, index), questions);
    const auto start = torch::tensor(flat)
                           .view({static_cast<int64_t>(rows.size()), static_cast<int64_t>(length)})
                           .to(pixels.device());
    GenerationOptions fitted = o;
    fitted.max_new_tokens =
        std::min(o.max_new_tokens, m.config.text.max_positions - static_cast<int64_t>(length));
    const auto written = generate(
        [&](const torch::Tensor& tokens, KVCache& cache) {
          const auto hidden = m.text_decoder->forward(tokens, /*causal=*/true,
                                                      cache.empty() ? memory : torch::Tensor(), &cache);
          return m.text_decoder->logits(hidden);
        },
        start, m.config.text.sep_token_id, {}, fitted);
    for (size_t j = 0; j < rows.size(); ++j) out[static_cast<size_t>(rows[j])] = written[j];
  }
  return out;
}

std::vector<std::string> blip_describe(BlipBundle& blip, const torch::Tensor& pixels,
                                       const std::vector<std::string>& prompts, const GenerationOptions& o) {
  const auto written = blip_generate(blip, pixels, prompts, o);
  std::vector<std::string> out;
  for (size_t i = 0; i < written.size(); ++i) {
    // Hugging Face decodes the whole sequence: a caption repeats its prompt.
    std::vector<int64_t> ids;
    if (blip.model->config.task != "vqa") ids = blip_caption_start(blip, prompts[i]);
    ids.insert(ids.end(), written[i].tokens.begin(), written[i].tokens.end());
    out.push_back(blip.tokenizer.decode(ids));
  }
  return out;
}

TensorMap dump_blip(BlipBundle& blip, const std::vector<fs::path>& images,
                    const std::vector<std::string>& texts) {
  check(!images.empty(), "dump: a BLIP model needs at least one --image");
  if (texts.size() > 1)
    throw UsageError(
        "dump: a BLIP model takes one --text (a caption start, or the question), given to every image");
  const bool vqa = blip.model->config.task == "vqa";
  if (vqa && texts.empty()) throw UsageError("dump: a BLIP question answerer needs --text (the question)");
  const std::string text = texts.empty() ? std::string() : texts[0];
  const Starts s = starts_for(blip, std::vector<std::string>(images.size(), text));
  c10::InferenceMode inference;
  TensorMap out;
  std::vector<torch::Tensor> pixels;
  for (const auto& image : images) pixels.push_back(load_blip_pixels(blip, image));
  out["pixel_values"] = torch::stack(pixels);
  out["image_embeds"] = blip.model->vision->forward(out["pixel_values"]);
  const auto memory = decoder_memory(blip, out["image_embeds"], s.questions);
  const auto start =
      torch::tensor(s.starts[0]).unsqueeze(0).expand({static_cast<int64_t>(images.size()), -1});
  if (vqa) {
    out["input_ids"] = torch::tensor(s.questions[0]).unsqueeze(0);
    out["question_embeds"] = memory;
  } else {
    out["input_ids"] = start.narrow(0, 0, 1).clone();
  }
  out["logits"] =
      blip.model->text_decoder->logits(blip.model->text_decoder->forward(start, /*causal=*/true, memory));
  return out;
}

}  // namespace mmlearn
