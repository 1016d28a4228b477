#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/models/registry.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_embed(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "embed", "print L2-normalized embeddings of images and texts (CLIP) or audio and texts (CLAP)");
  struct Args {
    ModelArgs model;
    std::map<std::string, std::vector<std::string>> inputs;  // by modality
    std::string precision = "fp32";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->inputs["image"], "image file (repeatable)");
  cmd->add_option("--audio", a->inputs["audio"], "audio file, for an audio–text model (repeatable)");
  cmd->add_option("--text", a->inputs["text"], "text (repeatable)");
  cmd->add_option("--precision", a->precision, "fp32 (exact) or bf16 (faster on CPUs with bf16)")
      ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json,
                "JSON on stdout: [{\"image\"|\"audio\"|\"text\": .., \"embedding\": [..]}]");
  cmd->callback([a] {
    bool any = false;
    for (const auto& [modality, inputs] : a->inputs) any = any || !inputs.empty();
    if (!any) throw UsageError("embed needs at least one --image, --audio or --text");
    auto model = open_model(a->model);
    const Precision precision = parse_precision(a->precision);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& modality : {"image", "audio", "text"}) {
      const auto& inputs = a->inputs[modality];
      if (inputs.empty()) continue;
      const torch::Tensor e = model->embed(modality, inputs, precision).contiguous();
      for (size_t i = 0; i < inputs.size(); ++i) {
        const float* row = e[static_cast<int64_t>(i)].data_ptr<float>();
        out.push_back({{modality, inputs[i]}, {"embedding", std::vector<float>(row, row + e.size(1))}});
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
