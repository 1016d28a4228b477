#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/models/clip_pixels.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_embed(CLI::App& app) {
  auto* cmd = app.add_subcommand("embed", "print L2-normalized embeddings of images and texts");
  struct Args {
    ModelArgs model;
    std::vector<std::string> images, texts;
    std::string precision = "fp32";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->images, "image file (repeatable)");
  cmd->add_option("--text", a->texts, "text (repeatable)");
  cmd->add_option("--precision", a->precision, "fp32 (exact) or bf16 (faster on CPUs with bf16)")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "JSON on stdout: [{\"image\"|\"text\": .., \"embedding\": [..]}]");
  cmd->callback([a] {
    if (a->images.empty() && a->texts.empty()) throw UsageError("embed needs at least one --image or --text");
    const Precision precision = parse_precision(a->precision);
    ClipBundle clip = open_model(a->model);
    nlohmann::json out = nlohmann::json::array();
    if (!a->images.empty()) {
      std::vector<torch::Tensor> pixels;
      for (const auto& p : a->images) pixels.push_back(load_clip_pixels(clip.model->config, p));
      auto e = embed_pixels(clip.model, torch::stack(pixels), precision);
      for (size_t i = 0; i < a->images.size(); ++i)
        out.push_back(
            {{"image", a->images[i]},
             {"embedding", std::vector<float>(e[i].data_ptr<float>(), e[i].data_ptr<float>() + e.size(1))}});
    }
    if (!a->texts.empty()) {
      auto e = embed_texts(clip.model,
                           tokenize_batch(clip.tokenizer, a->texts, clip.model->config.text.context_length),
                           precision);
      for (size_t i = 0; i < a->texts.size(); ++i)
        out.push_back(
            {{"text", a->texts[i]},
             {"embedding", std::vector<float>(e[i].data_ptr<float>(), e[i].data_ptr<float>() + e.size(1))}});
    }
    if (a->json) {
      std::cout << out.dump() << "\n";
      return;
    }
    for (const auto& r : out) {
      std::cout << (r.contains("image") ? "image " + r["image"].get<std::string>()
                                        : "text  " + r["text"].get<std::string>());
      std::cout << "\n ";
      for (float v : r["embedding"]) std::printf(" %.5f", v);
      std::cout << "\n";
    }
  });
}

}  // namespace mmlearn::cli
