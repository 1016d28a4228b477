#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/models/clip_pixels.h"
#include "mmlearn/train/clap_trainer.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_embed(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "embed", "print L2-normalized embeddings of images and texts (CLIP) or audio and texts (CLAP)");
  struct Args {
    ModelArgs model;
    std::vector<std::string> images, audio, texts;
    std::string precision = "fp32";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->images, "image file (repeatable)");
  cmd->add_option("--audio", a->audio, "audio file, for an audio–text model (repeatable)");
  cmd->add_option("--text", a->texts, "text (repeatable)");
  cmd->add_option("--precision", a->precision, "fp32 (exact) or bf16 (faster on CPUs with bf16; CLIP)")
      ->capture_default_str();
  cmd->add_flag("--json", a->json,
                "JSON on stdout: [{\"image\"|\"audio\"|\"text\": .., \"embedding\": [..]}]");
  cmd->callback([a] {
    nlohmann::json out = nlohmann::json::array();
    auto add = [&](const char* kind, const std::string& name, const torch::Tensor& e) {
      out.push_back(
          {{kind, name},
           {"embedding", std::vector<float>(e.data_ptr<float>(), e.data_ptr<float>() + e.numel())}});
    };
    if (is_clap_model(a->model.model)) {  // audio–text
      if (!a->images.empty()) throw UsageError("an audio–text model embeds --audio and --text, not --image");
      if (a->audio.empty() && a->texts.empty())
        throw UsageError("embed needs at least one --audio or --text");
      ClapBundle clap = load_clap(a->model.model);
      const int64_t window = clap_window_samples(clap.model->config.audio);
      std::vector<data::AudioClip> clips;
      for (const auto& path : a->audio) clips.push_back(data::read_audio_clip(path, window));
      std::vector<const data::AudioClip*> batch;
      for (const auto& c : clips) batch.push_back(&c);
      if (!batch.empty()) {
        auto e = embed_audio_clips(clap, batch);
        for (size_t i = 0; i < batch.size(); ++i) add("audio", a->audio[i], e[static_cast<int64_t>(i)]);
      }
      if (!a->texts.empty()) {
        auto e = embed_clap_texts(clap, a->texts);
        for (size_t i = 0; i < a->texts.size(); ++i) add("text", a->texts[i], e[static_cast<int64_t>(i)]);
      }
    } else {
      if (!a->audio.empty())
        throw UsageError("--audio needs an audio–text model (one trained with --preset clap-tiny)");
      if (a->images.empty() && a->texts.empty())
        throw UsageError("embed needs at least one --image or --text");
      const Precision precision = parse_precision(a->precision);
      ClipBundle clip = open_model(a->model);
      if (!a->images.empty()) {
        std::vector<torch::Tensor> pixels;
        for (const auto& p : a->images) pixels.push_back(load_clip_pixels(clip.model->config, p));
        auto e = embed_pixels(clip.model, torch::stack(pixels), precision);
        for (size_t i = 0; i < a->images.size(); ++i) add("image", a->images[i], e[static_cast<int64_t>(i)]);
      }
      if (!a->texts.empty()) {
        auto e = embed_texts(clip.model,
                             tokenize_batch(clip.tokenizer, a->texts, clip.model->config.text.context_length),
                             precision);
        for (size_t i = 0; i < a->texts.size(); ++i) add("text", a->texts[i], e[static_cast<int64_t>(i)]);
      }
    }
    if (a->json) {
      std::cout << out.dump() << "\n";
      return;
    }
    for (const auto& r : out) {
      for (const char* kind : {"image", "audio", "text"})
        if (r.contains(kind)) std::cout << kind << " " << r[kind].get<std::string>() << "\n ";
      for (float v : r["embedding"]) std::printf(" %.5f", v);
      std::cout << "\n";
    }
  });
}

}  // namespace mmlearn::cli
