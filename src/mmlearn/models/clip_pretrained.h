// A CLIP model directory, the unit users move around: config.json + model.safetensors + vocab.json +
// merges.txt (the Hugging Face layout). Saving writes each file atomically; loading checks every file before
// reading any.
//
//   mmlearn::save_clip("run", model, tokenizer);
//   mmlearn::ClipBundle clip = mmlearn::load_clip("run");
//   auto ids = clip.tokenizer.encode_for_model("a red circle", clip.model->config.text.context_length);
#pragma once

#include <filesystem>

#include "mmlearn/models/clip.h"
#include "mmlearn/text/bpe.h"

namespace mmlearn {

struct ClipBundle {
  Clip model{nullptr};
  text::BpeTokenizer tokenizer;
};

void save_clip(const std::filesystem::path& dir, const Clip& model, const text::BpeTokenizer& tokenizer);
ClipBundle load_clip(const std::filesystem::path& dir);
ClipConfig load_clip_config(const std::filesystem::path& dir);

// Token ids [texts, context_length] for a batch of texts.
torch::Tensor tokenize_batch(const text::BpeTokenizer& tokenizer, const std::vector<std::string>& texts,
                             int64_t context_length);

}  // namespace mmlearn
