// A captioner, or a visual question answerer: a CLIP's image tower (ViT or ResNet, trained here or opened
// pretrained) gives image tokens, a connector (heads/connector.h) hands them to a text decoder
// (heads/text_decoder.h), and the decoder writes, after <|startoftext|> and the question if there is one,
// the caption or the answer, in the CLIP's tokenizer. Generation is heads/text_generation.h's.
//
// The pixels it takes are the CLIP's (normalized as its weights expect: models/clip_pixels.h).
//
//   auto m = mmlearn::make_captioner(mmlearn::open_clip("clip"), {.connector = ConnectorKind::prefix});
//   auto loss = mmlearn::captioner_loss(m, pixels, {"", ""}, {"a red star", "two circles"});
//   auto texts = mmlearn::describe_images(m, pixels, {"", "how many objects are there?"}, {.beam = 3});
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/data/manifest.h"
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
CaptionerConfig captioner_config(Clip& clip, int64_t vocab_size, const CaptionerOptions& options);
CaptionerBundle make_captioner(ClipBundle clip, const CaptionerOptions& options);

// The config.json "model_type" of a captioner directory: "captioner", or "vqa" for a question answerer.
std::string captioner_model_type(const std::string& task);

// What a manifest record gives the captioner to learn or be scored on: the prompt ("" for a caption, the
// "question" for VQA) and the text that follows it (the record's "text", or its "answer"). A missing field
// is an Error naming the record.
struct CaptionerExample {
  std::string prompt, target;
};
CaptionerExample captioner_example(const std::string& task, const data::Manifest& manifest,
                                   const data::Record& record);

// What the decoder is conditioned on for pixels [B, 3, S, S] (zeros for a blind model).
Conditioning condition_on_images(CaptionerBundle& m, const torch::Tensor& pixels);

// The conditioning of rows `rows` (int64), repeated or reordered as given.
Conditioning conditioning_rows(const Conditioning& conditioning, const torch::Tensor& rows);

// Teacher-forced cross-entropy of `targets` after each prompt ("" for captions), <|endoftext|> included,
// as a sum over the predicted tokens and their count (so that a caller can average over any batch).
std::pair<torch::Tensor, torch::Tensor> captioner_loss(CaptionerBundle& m, const torch::Tensor& pixels,
                                                       const std::vector<std::string>& prompts,
                                                       const std::vector<std::string>& targets);
// The same over conditioning already made (condition_on_images), a row each prompt.
std::pair<torch::Tensor, torch::Tensor> captioner_loss(CaptionerBundle& m, const Conditioning& conditioning,
                                                       const std::vector<std::string>& prompts,
                                                       const std::vector<std::string>& targets);

// Captions (empty prompts) or answers for each image, batched where the prompts have the same length. A
// prompt too long for the decoder's context is a UsageError.
std::vector<std::string> describe_images(CaptionerBundle& m, const torch::Tensor& pixels,
                                         const std::vector<std::string>& prompts,
                                         const GenerationOptions& options);

// A model directory: config.json (model_type "captioner" or "vqa"), model.safetensors (connector and decoder)
// and clip/ (the image tower and tokenizer, as save_clip writes them).
void save_captioner(const std::filesystem::path& dir, const CaptionerBundle& m);
CaptionerBundle load_captioner(const std::filesystem::path& dir);  // in evaluation mode

}  // namespace mmlearn
