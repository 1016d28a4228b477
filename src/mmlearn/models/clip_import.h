// Opening the CLIP checkpoints people download, natively and without executing anything:
//  - a Hugging Face CLIPModel directory: config.json, model.safetensors (or sharded *.safetensors with
//    model.safetensors.index.json, or pytorch_model.bin), vocab.json + merges.txt or tokenizer.json,
//    preprocessor_config.json;
//  - an OpenAI / OpenCLIP state dict (OpenAI key names: visual.conv1.weight, transformer.resblocks.N...) as
//    .safetensors or as a torch.save .pt/.bin file, its architecture inferred from tensor shapes as OpenAI's
//    build_model does (ViT or ResNet image tower, heads = width / 64), its tokenizer given or found beside
//    it;
//  - an mmlearn model directory (load_clip).
// The model remembers its family's image preprocessing (ClipConfig::image_preprocess) so that embed,
// zero-shot and dump reproduce the reference's pixels. fp16/bf16 weights are loaded into fp32.
//
//   mmlearn::ClipBundle clip = mmlearn::open_clip("clip-vit-base-patch32");        // HF directory
//   mmlearn::ClipBundle rn = mmlearn::open_clip("RN50.safetensors", {.tokenizer =
//   "bpe_simple_vocab_16e6.txt.gz"});
#pragma once

#include <filesystem>
#include <optional>

#include "mmlearn/models/clip_pretrained.h"

namespace mmlearn {

struct ClipImportOptions {
  // Tokenizer files (a directory or file that text::load_clip_tokenizer reads); empty: beside the checkpoint.
  std::filesystem::path tokenizer;
  // State dicts do not record the activation: OpenAI's weights use QuickGELU (the default), most OpenCLIP
  // models trained from scratch GELU (their open_clip_config.json says so, and is read when present).
  std::optional<Activation> activation;
};

// Any of the formats above, detected from what `path` holds. Errors name the file and what was expected.
ClipBundle open_clip(const std::filesystem::path& path, const ClipImportOptions& options = {});

// The architecture that a state dict with OpenAI's key names describes (build_model's inference), and the
// tensors renamed to mmlearn's module tree. `where` names the source in errors.
ClipConfig infer_openai_clip_config(const TensorMap& state, const std::string& where);
TensorMap from_openai_state_dict(TensorMap state);
// Hugging Face CLIPModel: config.json -> ClipConfig, and its tensors renamed (q/k/v fused, projections
// transposed).
ClipConfig clip_config_from_hf(const nlohmann::json& config, const std::string& where);
TensorMap from_hf_state_dict(const TensorMap& state, const std::string& where);
TensorMap to_hf_state_dict(const TensorMap& state);

// Writes a Hugging Face CLIPModel directory (config.json, model.safetensors, preprocessor_config.json,
// vocab.json, merges.txt) that transformers and open_clip load. ViT image towers only: HF has no ResNet CLIP.
void save_clip_hf(const std::filesystem::path& dir, const Clip& model, const text::BpeTokenizer& tokenizer);

}  // namespace mmlearn
