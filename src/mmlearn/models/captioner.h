// A captioner, or a visual question answerer: a CLIP's image tower (ViT or ResNet, trained here or opened
// pretrained) gives image tokens, a connector (heads/connector.h) hands them to a text decoder
// (heads/text_decoder.h), and the decoder writes, after <|startoftext|> and the question if there is one,
// the caption or the answer, in the CLIP's tokenizer. Generation is heads/text_generation.h's.
//
//   auto m = mmlearn::make_captioner(mmlearn::open_clip("clip"), {.connector = ConnectorKind::prefix});
//   auto loss = mmlearn::captioner_loss(m, images_u8, {"", ""}, {"a red star", "two circles"});
//   auto texts = mmlearn::describe_images(m, images_u8, {"", "how many objects are there?"}, {.beam = 3});
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/heads/connector.h"
#include "mmlearn/heads/text_decoder.h"
#include "mmlearn/heads/text_generation.h"
#include "mmlearn/models/clip_pretrained.h"

namespace mmlearn {

struct CaptionerConfig {
  std::string task = "caption";  // or "vqa": the decoder continues a question with its answer
  bool blind = false;            // the language-prior baseline: trained and run without seeing the image
  ConnectorConfig connector;
  TextDecoderConfig decoder;
};
nlohmann::json to_json(const CaptionerConfig& config);
CaptionerConfig captioner_config_from_json(const nlohmann::json& json, const std::string& where);

struct CaptionerImpl : torch::nn::Module {
  explicit CaptionerImpl(const CaptionerConfig& config);
  CaptionerConfig config;
  Connector connector{nullptr};
  TextDecoder decoder{nullptr};
};
TORCH_MODULE(Captioner);

struct CaptionerBundle {
  ClipBundle clip;  // the image tower, the pixels it takes and the tokenizer
  Captioner model{nullptr};
};

// The sizes a new captioner over `clip` takes; the decoder's vocabulary and context follow the CLIP's.
struct CaptionerOptions {
  std::string task = "caption";
  bool blind = false;
  ConnectorKind connector = ConnectorKind::cross_attention;
  int64_t width = 256, layers = 4, heads = 4;
};
CaptionerBundle make_captioner(ClipBundle clip, const CaptionerOptions& options);

// What the decoder is conditioned on for uint8 images [B, 3, S, S] (zeros for a blind model).
Conditioning condition_on_images(CaptionerBundle& m, const torch::Tensor& images_u8);

// Teacher-forced cross-entropy of `targets` after each prompt ("" for captions), <|endoftext|> included,
// as a sum over the predicted tokens and their count (so that a caller can average over any batch).
std::pair<torch::Tensor, torch::Tensor> captioner_loss(CaptionerBundle& m, const torch::Tensor& images_u8,
                                                       const std::vector<std::string>& prompts,
                                                       const std::vector<std::string>& targets);

// Captions (empty prompts) or answers for each image, batched where the prompts have the same length.
std::vector<std::string> describe_images(CaptionerBundle& m, const torch::Tensor& images_u8,
                                         const std::vector<std::string>& prompts,
                                         const GenerationOptions& options);

// A model directory: config.json (model_type "captioner"), model.safetensors (connector and decoder) and
// clip/ (the image tower and tokenizer, as save_clip writes them).
void save_captioner(const std::filesystem::path& dir, const CaptionerBundle& m);
CaptionerBundle load_captioner(const std::filesystem::path& dir);  // in evaluation mode

}  // namespace mmlearn
