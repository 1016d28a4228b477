// Opening Whisper models, natively and without executing anything:
//  - OpenAI's checkpoints (tiny.pt ... large-v3.pt): a torch.save dict {"dims": ModelDimensions,
//    "model_state_dict": fp16 tensors}; they carry no tokenizer, so one is given or found beside the file
//    (multilingual.tiktoken / gpt2.tiktoken, or a Hugging Face tokenizer directory);
//  - Hugging Face WhisperForConditionalGeneration directories: config.json, model.safetensors (or shards, or
//    pytorch_model.bin), vocab.json + added tokens;
//  - mmlearn Whisper directories (save_whisper): config.json {"architecture": "whisper", "dims": {...},
//    "num_languages": N, "multilingual": bool, "suppress_non_speech": bool, "timestamps": bool},
//    model.safetensors under OpenAI's
//    names, tokenizer.tiktoken.
// fp16/bf16 weights are loaded into fp32.
//
//   mmlearn::WhisperBundle w = mmlearn::open_whisper("base.pt", {.tokenizer = "multilingual.tiktoken"});
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "mmlearn/core/safetensors.h"
#include "mmlearn/models/whisper.h"
#include "mmlearn/text/whisper_tokenizer.h"

namespace mmlearn {

struct WhisperBundle {
  Whisper model{nullptr};
  text::WhisperTokenizer tokenizer;
  // Multilingual models start decoding with <|lang|> <|task|> and can detect the language; English-only ones
  // with <|startoftranscript|> alone. OpenAI's rule: n_vocab >= 51865; mmlearn directories say so.
  bool multilingual = false;
  // Whether suppress_tokens' -1 stands for Whisper's non-speech symbols (":", "(", "[", ...). Models trained
  // here learn from transcripts that may hold them ("two objects: ..."), so they keep them: suppressing ":"
  // there ends the transcript at the colon.
  bool suppress_non_speech = true;
  // Whether the model predicts timestamp tokens. Recognizers trained here learn transcripts without them, so
  // transcription decodes them with <|notimestamps|>, one segment per window.
  bool timestamps = true;
};

struct WhisperOpenOptions {
  std::filesystem::path tokenizer;  // a .tiktoken file or a tokenizer directory; empty: beside the model
};

WhisperBundle open_whisper(const std::filesystem::path& path, const WhisperOpenOptions& options = {});
void save_whisper(const std::filesystem::path& dir, const WhisperBundle& whisper);

// The model `config` describes with `weights` (OpenAI names) loaded strictly, in evaluation mode, after
// checking that the tokenizer's vocabulary is the model's.
WhisperBundle make_whisper(const WhisperConfig& config, text::WhisperTokenizer tokenizer, TensorMap weights,
                           const std::string& where, std::optional<bool> multilingual = std::nullopt);

// Hugging Face's WhisperConfig -> dimensions, and its tensor names -> OpenAI's.
WhisperConfig whisper_config_from_hf(const nlohmann::json& config, const std::string& where);
TensorMap whisper_from_hf_state_dict(const TensorMap& state, const std::string& where);

}  // namespace mmlearn
