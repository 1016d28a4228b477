// BLIP (Li et al., 2022) as Hugging Face ships it, opened natively: BlipForConditionalGeneration (captions)
// and BlipForQuestionAnswering (answers), with their exact preprocessing and tokenizer.
//   - vision: a ViT whose patch convolution has a bias, with a class token, learned positions, pre-norm
//     layers (mmlearn's shared Transformer) and a LayerNorm over every output token (no pre-norm);
//   - text: BERT (word + position embeddings, LayerNorm), post-norm layers of self-attention,
//     cross-attention and a GELU MLP; the captioner's decoder is causal and cross-attends to the image
//     tokens; the question answerer first encodes the question (bidirectional, cross-attending to the image),
//     then its decoder cross-attends to the encoded question; the LM head (dense, GELU, LayerNorm) ends in
//     the word embeddings (tied) plus a bias;
//   - pixels: bicubic resize to image_size x image_size (no crop), CLIP's mean and std;
//   - tokens: BERT WordPiece (text/wordpiece.h); the decoder starts from [DEC] (bos_token_id) and stops at
//     [SEP] (sep_token_id); a caption prompt ("a picture of") follows [DEC].
// Generation is heads/text_generation.h's, over a KV cache.
//
//   mmlearn::BlipBundle blip = mmlearn::open_blip("blip-image-captioning-base");
//   auto captions = mmlearn::blip_describe(blip, pixels, {"", "a picture of"}, {.beam = 3});
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mmlearn/blocks/decoder_block.h"
#include "mmlearn/blocks/transformer.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/heads/text_generation.h"
#include "mmlearn/text/wordpiece.h"
#include "mmlearn/vision/clip_preprocess.h"

namespace mmlearn {

struct BlipVisionConfig {
  int64_t width = 768, layers = 12, heads = 12, intermediate = 3072;
  int64_t image_size = 384, patch_size = 16;
  double layer_norm_eps = 1e-5;
};
struct BlipTextConfig {
  int64_t vocab_size = 30524, width = 768, layers = 12, heads = 8, intermediate = 3072;
  int64_t max_positions = 512;
  int64_t encoder_width = 768;  // what the captioner's cross-attention reads: the image tokens' width
  double layer_norm_eps = 1e-12;
  int64_t bos_token_id = 30522, sep_token_id = 102, pad_token_id = 0;
};
struct BlipConfig {
  std::string task = "caption";  // "vqa": BlipForQuestionAnswering
  BlipVisionConfig vision;
  BlipTextConfig text;
};

struct BlipVisionImpl : torch::nn::Module {
  explicit BlipVisionImpl(const BlipVisionConfig& config);
  torch::Tensor forward(const torch::Tensor& pixels);  // [B, 3, S, S] -> image tokens [B, 1 + grid^2, D]

  BlipVisionConfig config;
  torch::nn::Conv2d patch_embed{nullptr};
  torch::Tensor class_embedding, position_embedding;  // [D], [1 + grid^2, D]
  Transformer transformer{nullptr};
  torch::nn::LayerNorm ln_post{nullptr};
};
TORCH_MODULE(BlipVision);

// BERT's attention: queries from x, keys and values from x (self) or from the encoder's tokens (cross), then
// the output projection and LayerNorm around the residual.
struct BertAttentionImpl : torch::nn::Module {
  BertAttentionImpl(int64_t width, int64_t kv_width, int64_t heads, double eps);
  // x [B, T, D]; k, v [B, S, D] (already projected); mask additive, broadcast to [B, H, T, S], or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask);

  int64_t heads;
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, out{nullptr};
  torch::nn::LayerNorm ln{nullptr};
};
TORCH_MODULE(BertAttention);

struct BertLayerImpl : torch::nn::Module {
  BertLayerImpl(const BlipTextConfig& c, int64_t memory_width);
  // self_mask additive [T, S] or undefined; memory [B, N, E], every token real. With a cache, x follows the
  // cached positions, and cross-attention's keys and values are made once.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& self_mask, const torch::Tensor& memory,
                        LayerCache* cache);

  BertAttention self_attn{nullptr}, cross_attn{nullptr};
  torch::nn::Linear mlp_in{nullptr}, mlp_out{nullptr};
  torch::nn::LayerNorm ln_mlp{nullptr};
};
TORCH_MODULE(BertLayer);

// BLIP's text model: the question encoder (no head), or the decoder with its LM head.
struct BlipTextImpl : torch::nn::Module {
  BlipTextImpl(const BlipTextConfig& config, int64_t memory_width, bool lm_head);
  // Hidden states [B, T, D] of ids [B, T] (positions after what the cache holds), cross-attending to memory
  // (undefined once the cache holds its keys); `causal` for the decoder. Nothing is padded: callers group
  // texts of one length.
  torch::Tensor forward(const torch::Tensor& ids, bool causal, const torch::Tensor& memory,
                        KVCache* cache = nullptr);
  torch::Tensor logits(const torch::Tensor& hidden);  // [B, T, vocab]

  BlipTextConfig config;
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr};
  torch::nn::LayerNorm ln_embed{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::Linear head_dense{nullptr};  // the LM head; its output matrix is word_embeddings'
  torch::nn::LayerNorm head_ln{nullptr};
  torch::Tensor head_bias;
};
TORCH_MODULE(BlipText);

struct BlipImpl : torch::nn::Module {
  explicit BlipImpl(const BlipConfig& config);
  BlipConfig config;
  BlipVision vision{nullptr};
  BlipText text_encoder{nullptr};  // the question encoder: BlipForQuestionAnswering only
  BlipText text_decoder{nullptr};
};
TORCH_MODULE(Blip);

struct BlipBundle {
  Blip model{nullptr};
  text::WordPieceTokenizer tokenizer;
  vision::ImagePreprocess preprocess;  // BlipImageProcessor's, from preprocessor_config.json
};

// A Hugging Face BLIP directory: config.json (model_type "blip", architectures BlipForConditionalGeneration
// or BlipForQuestionAnswering), model.safetensors (or shards, or pytorch_model.bin), preprocessor_config.json
// and vocab.txt or tokenizer.json. In evaluation mode. Errors name the file and the field or tensor.
BlipBundle open_blip(const std::filesystem::path& dir);
// Whether `dir` holds a BLIP directory for `task`, from config.json alone: "vqa" for
// BlipForQuestionAnswering, "caption" for any other BLIP (so that opening it names an architecture mmlearn
// does not run).
bool holds_blip(const std::filesystem::path& dir, const std::string& task);
BlipConfig blip_config_from_hf(const nlohmann::json& config, const std::string& where);
// Hugging Face's tensor names -> mmlearn's module tree (vision_model.* -> vision.*, text_decoder.bert.* ->
// text_decoder.*, the fused qkv as the Transformer's in_proj, ...); tied and buffer tensors left out.
TensorMap from_hf_blip_state_dict(const TensorMap& state, const BlipConfig& config, const std::string& where);

torch::Tensor load_blip_pixels(const BlipBundle& blip, const std::filesystem::path& image);  // [3, S, S]
// The decoder's start for a caption: [DEC] and the prompt's WordPiece tokens.
std::vector<int64_t> blip_caption_start(const BlipBundle& blip, const std::string& prompt);

// Captions (after the prompt, which the text repeats as Hugging Face's decode does) or, for a question
// answerer, answers to the prompts, for pixels [B, 3, S, S]. A prompt too long for the model, or an empty
// question, is a UsageError.
std::vector<std::string> blip_describe(BlipBundle& blip, const torch::Tensor& pixels,
                                       const std::vector<std::string>& prompts,
                                       const GenerationOptions& options);
// The written tokens themselves (after the start), for parity tests.
std::vector<GeneratedText> blip_generate(BlipBundle& blip, const torch::Tensor& pixels,
                                         const std::vector<std::string>& prompts,
                                         const GenerationOptions& options);

// Intermediate tensors, named as Hugging Face's outputs: pixel_values, image_embeds (the vision model's
// last_hidden_state) and, per text, input_ids and logits (the decoder's, teacher-forced over the caption
// start, or for a question answerer question_embeds and the decoder's logits after [DEC]).
TensorMap dump_blip(BlipBundle& blip, const std::vector<std::filesystem::path>& images,
                    const std::vector<std::string>& texts);

}  // namespace mmlearn
