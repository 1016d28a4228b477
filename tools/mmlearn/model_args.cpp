#include "model_args.h"

namespace mmlearn::cli {

void add_model_options(CLI::App* cmd, ModelArgs& a) {
  cmd->add_option("--model", a.model,
                  "model: a model directory (mmlearn or Hugging Face), an OpenAI/OpenCLIP state dict "
                  "(.safetensors, .pt, .bin) or OpenAI's Whisper .pt")
      ->required();
  cmd->add_option("--tokenizer", a.tokenizer,
                  "tokenizer files for a bare checkpoint (bpe_simple_vocab_16e6.txt.gz, tokenizer.json, a "
                  "*.tiktoken file, or a directory); default: beside the model");
  cmd->add_option("--activation", a.activation,
                  "CLIP state dicts that do not say: gelu or quick_gelu (default: quick_gelu, OpenAI's)")
      ->check(CLI::IsMember({"gelu", "quick_gelu"}));
}

std::unique_ptr<Model> open_model(const ModelArgs& a) {
  return mmlearn::open_model(a.model, {.tokenizer = a.tokenizer, .activation = a.activation});
}

}  // namespace mmlearn::cli
