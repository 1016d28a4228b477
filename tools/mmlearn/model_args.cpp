#include "model_args.h"

namespace mmlearn::cli {

void add_model_options(CLI::App* cmd, ModelArgs& a) {
  cmd->add_option("--model", a.model,
                  "model: an mmlearn or Hugging Face CLIP directory, or an OpenAI/OpenCLIP state dict "
                  "(.safetensors, .pt, .bin); for dump --audio, a Whisper model")
      ->required();
  cmd->add_option("--tokenizer", a.tokenizer,
                  "tokenizer files for a state dict (bpe_simple_vocab_16e6.txt.gz, tokenizer.json, or a "
                  "directory with vocab.json + merges.txt); default: beside the model");
  cmd->add_option("--activation", a.activation,
                  "gelu or quick_gelu, for state dicts that do not say (default: quick_gelu, OpenAI's)");
}

ClipBundle open_model(const ModelArgs& a) {
  ClipImportOptions options{.tokenizer = a.tokenizer};
  if (!a.activation.empty()) options.activation = parse_activation(a.activation);
  return open_clip(a.model, options);
}

}  // namespace mmlearn::cli
