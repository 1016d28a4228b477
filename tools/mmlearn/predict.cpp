#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "predict", "classify one example with a trained classifier, and show what each modality contributes");
  struct Args {
    ModelArgs model;
    std::string image, text, audio;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->image, "image file");
  cmd->add_option("--text", a->text, "the text, as a string");
  cmd->add_option("--audio", a->audio, "audio file (WAV, FLAC, MP3, ...)");
  cmd->add_flag("--json", a->json, "JSON on stdout");
  cmd->callback([a, cmd] {
    if (!cmd->count("--image") && !cmd->count("--text") && !cmd->count("--audio"))
      throw UsageError("nothing to classify: give at least one of --image, --text, --audio");
    auto model = open_model(a->model);
    PredictRequest request{.image = a->image, .audio = a->audio};
    if (cmd->count("--text")) request.text = a->text;
    const auto result = model->predict(request);
    if (a->json) {
      std::cout << result.dump() << "\n";
      return;
    }
    std::cout << result["label"].get<std::string>() << "  (from " << result["used"].size() << " of "
              << result["modalities"].size()
              << " modalities: " << join(result["used"].get<std::vector<std::string>>()) << ")\n";
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
