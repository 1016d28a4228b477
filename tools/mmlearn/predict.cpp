#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/train/fusion_trainer.h"
#include "mmlearn/vision/image_processor.h"

namespace mmlearn::cli {

void add_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "predict", "classify one example with a trained classifier, and show what each modality contributes");
  struct Args {
    std::string model, image, text, audio;
    bool text_given = false, json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "classifier directory (from `mmlearn train --task classify`)")
      ->required();
  cmd->add_option("--image", a->image, "image file");
  cmd->add_option("--text", a->text, "the text, as a string");
  cmd->add_option("--audio", a->audio, "audio file (WAV, FLAC, MP3, ...)");
  cmd->add_flag("--json", a->json, "JSON on stdout");
  cmd->callback([a, cmd] {
    check(is_fusion_classifier(a->model), a->model,
          " is not a classifier directory (config.json with \"model_type\": \"fusion_classifier\")");
    auto bundle = load_fusion_classifier(a->model);
    const auto& c = bundle.model->config;
    data::MultimodalExample example;
    auto reads = [&](const char* m) {
      check(reads_modality(c, m), "--", m, ": the model was not trained with ", m, " (it reads ",
            join(c.modalities), ")");
    };
    if (cmd->count("--image")) {
      reads("image");
      example.pixels = load_image_tensor(a->image, c.image.image_size);
    }
    if (cmd->count("--text")) {
      reads("text");
      example.text = a->text;
    }
    if (cmd->count("--audio")) {
      reads("audio");
      example.audio = data::read_audio_clip(a->audio, clap_window_samples(c.audio));
    }
    if (!example.pixels.defined() && !example.text && !example.audio) {
      throw UsageError(str_cat("nothing to classify: give at least one of --", join(c.modalities, ", --")));
    }
    const auto result = predict_with_ablation(bundle, example);
    if (a->json) {
      std::cout << result.dump() << "\n";
      return;
    }
    std::cout << result["label"].get<std::string>() << "  (from " << result["used"].size() << " of "
              << c.modalities.size() << " modalities: ";
    for (size_t i = 0; i < result["used"].size(); ++i)
      std::cout << (i ? ", " : "") << result["used"][i].get<std::string>();
    std::cout << ")\n";
    for (const auto& [label, p] : result["probabilities"].items())
      std::printf("  %-12s %5.1f%%\n", label.c_str(), 100 * p.get<double>());
    for (const auto& [m, w] : result["without"].items()) {
      if (w.is_null()) {
        std::printf("without %s: nothing left to predict from\n", m.c_str());
        continue;
      }
      std::printf("without %-6s -> %-10s (p(%s) %+.1f points)\n", m.c_str(),
                  w["label"].get<std::string>().c_str(), result["label"].get<std::string>().c_str(),
                  100 * w["change"].get<double>());
    }
  });
}

}  // namespace mmlearn::cli
