#include <iostream>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/models/clip_pixels.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_dump(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "dump",
      "write a model's inputs and outputs to a safetensors file, to check a conversion against its source");
  struct Args {
    ModelArgs model;
    std::vector<std::string> images, texts;
    std::string out;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->images, "image file (repeatable)");
  cmd->add_option("--text", a->texts, "text (repeatable)");
  cmd->add_option("--out", a->out,
                  "safetensors file: input_ids, pixel_values, image_embeds, text_embeds, logits_per_image")
      ->required();
  cmd->callback([a] {
    if (a->images.empty() && a->texts.empty()) throw UsageError("dump needs at least one --image or --text");
    ClipBundle clip = open_model(a->model);
    TensorMap out;
    if (!a->images.empty()) {
      std::vector<torch::Tensor> pixels;
      for (const auto& p : a->images) pixels.push_back(load_clip_pixels(clip.model->config, p));
      out["pixel_values"] = torch::stack(pixels);
      out["image_embeds"] = embed_pixels(clip.model, out["pixel_values"]);
    }
    if (!a->texts.empty()) {
      out["input_ids"] = tokenize_batch(clip.tokenizer, a->texts, clip.model->config.text.context_length);
      out["text_embeds"] = embed_texts(clip.model, out["input_ids"]);
    }
    if (out.count("image_embeds") && out.count("text_embeds")) {
      c10::InferenceMode inference;
      out["logits_per_image"] =
          clip.model->logit_scale.exp() * torch::matmul(out["image_embeds"], out["text_embeds"].t());
    }
    save_safetensors(a->out, out, {{"producer", "mmlearn dump"}});
    std::cerr << "wrote " << out.size() << " tensors to " << a->out << "\n";
  });
}

}  // namespace mmlearn::cli
