#include <iostream>

#include "commands.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_convert(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert",
                                 "write a CLIP checkpoint (HF directory, OpenAI/OpenCLIP state dict) as an "
                                 "mmlearn or Hugging Face model directory");
  struct Args {
    ModelArgs model;
    std::string out, format = "mmlearn";
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--out", a->out,
                  "model directory to write (config.json, model.safetensors, vocab.json, "
                  "merges.txt)")
      ->required();
  cmd->add_option("--format", a->format,
                  "mmlearn (keeps the model's own preprocessing) or hf (a transformers CLIPModel directory)")
      ->check(CLI::IsMember({"mmlearn", "hf"}))
      ->capture_default_str();
  cmd->callback([a] {
    auto model = open_model(a->model);
    ClipBundle& clip = need<ClipBundle>(*model, "convert", "a CLIP model");
    if (a->format == "hf")
      save_clip_hf(a->out, clip.model, clip.tokenizer);
    else
      save_clip(a->out, clip.model, clip.tokenizer);
    std::cerr << "wrote " << a->out << " (" << clip.model->config.image_preprocess
              << " image preprocessing, embedding size " << clip.model->config.embed_dim << ")\n";
  });
}

}  // namespace mmlearn::cli
