#include <iostream>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/models/blip.h"
#include "mmlearn/models/clip_pixels.h"
#include "mmlearn/models/whisper_decoding.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_dump(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "dump",
      "write a model's inputs and outputs to a safetensors file, to check a conversion against its source");
  struct Args {
    ModelArgs model;
    std::vector<std::string> images, texts;
    std::string out, audio;
    std::vector<int64_t> tokens;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->images, "image file (repeatable)");
  cmd->add_option("--text", a->texts, "text (repeatable)");
  cmd->add_option("--audio", a->audio,
                  "audio file, for a Whisper model: dumps input_features, encoder_output");
  cmd->add_option("--tokens", a->tokens,
                  "with --audio: decoder input ids (e.g. 50258,50259,50359) for logits")
      ->delimiter(',');
  cmd->add_option(
         "--out", a->out,
         "safetensors file: CLIP's input_ids, pixel_values, image_embeds, text_embeds, logits_per_image; "
         "BLIP's pixel_values, image_embeds, input_ids, (question_embeds,) logits; Whisper's "
         "input_features, encoder_output, logits")
      ->required();
  cmd->callback([a] {
    const std::filesystem::path out_dir = std::filesystem::path(a->out).parent_path();
    if (!out_dir.empty() && !std::filesystem::is_directory(out_dir))
      throw UsageError(str_cat("--out ", a->out, ": the directory ", out_dir.string(), " does not exist"));
    if (!a->audio.empty()) {
      if (!a->images.empty() || !a->texts.empty()) throw UsageError("dump takes --audio, or --image/--text");
      auto model = open_model(a->model);
      WhisperBundle& whisper = need<WhisperBundle>(*model, "dump --audio", "a Whisper model");
      const TensorMap out = dump_whisper(whisper, a->audio, a->tokens);
      save_safetensors(a->out, out, {{"producer", "mmlearn dump"}});
      std::cerr << "wrote " << out.size() << " tensors to " << a->out << "\n";
      return;
    }
    if (a->images.empty() && a->texts.empty())
      throw UsageError("dump needs at least one --image or --text (CLIP, BLIP), or --audio (Whisper)");
    auto model = open_model(a->model);
    if (auto* blip = model->bundle<BlipBundle>()) {
      const std::vector<std::filesystem::path> images(a->images.begin(), a->images.end());
      const TensorMap out = dump_blip(*blip, images, a->texts);
      save_safetensors(a->out, out, {{"producer", "mmlearn dump"}});
      std::cerr << "wrote " << out.size() << " tensors to " << a->out << "\n";
      return;
    }
    ClipBundle& clip = need<ClipBundle>(*model, "dump --image/--text", "a CLIP or BLIP model");
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
