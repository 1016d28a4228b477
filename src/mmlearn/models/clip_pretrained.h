// A CLIP model directory, the unit users move around: config.json + model.safetensors + vocab.json +
// merges.txt (the Hugging Face layout). Saving writes each file atomically; loading checks every file before
// reading any.
//
//   mmlearn::save_clip("run", model, tokenizer);
//   mmlearn::ClipBundle clip = mmlearn::load_clip("run");
//   auto ids = clip.tokenizer.encode_for_model("a red circle", clip.model->config.text.context_length);
#pragma once

#include <filesystem>

#include "mmlearn/core/safetensors.h"
#include "mmlearn/models/clip.h"
#include "mmlearn/text/bpe.h"

namespace mmlearn {

struct ClipBundle {
  Clip model{nullptr};
  text::BpeTokenizer tokenizer;
};

void save_clip(const std::filesystem::path& dir, const Clip& model, const text::BpeTokenizer& tokenizer);
ClipBundle load_clip(const std::filesystem::path& dir);
// The model `config` describes with `weights` loaded strictly, in evaluation mode, after checking that the
// tokenizer fits it (its ids within the vocabulary, its <|endoftext|> where the text tower pools). `where`
// names the source in errors.
ClipBundle make_clip(const ClipConfig& config, text::BpeTokenizer tokenizer, const TensorMap& weights,
                     const std::string& where);
ClipConfig load_clip_config(const std::filesystem::path& dir);

// Token ids [texts, context_length] for a batch of texts.
torch::Tensor tokenize_batch(const text::BpeTokenizer& tokenizer, const std::vector<std::string>& texts,
                             int64_t context_length);

}  // namespace mmlearn
