#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/models/clip.h"

namespace mmlearn::cli {

void add_models(CLI::App& app) {
  auto* cmd = app.add_subcommand("models", "list the model presets");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "JSON on stdout");
  cmd->callback([as_json] {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& name : clip_preset_names()) {
      ClipConfig c = clip_preset(name);
      int64_t params = 0;
      for (const auto& p : Clip(c)->parameters()) params += p.numel();
      out.push_back({{"name", name}, {"parameters", params}, {"config", to_json(c)}});
    }
    if (*as_json) {
      std::cout << out.dump() << "\n";
      return;
    }
    std::printf("%-20s %12s  %s\n", "preset", "parameters", "vision / text");
    for (const auto& m : out) {
      const auto& c = m["config"];
      const auto& v = c["vision"];
      const std::string vision = v["resnet_layers"].empty()
                                     ? str_cat("ViT ", v["image_size"], "/", v["patch_size"], " width ",
                                               v["width"], " x", v["layers"], " layers")
                                     : str_cat("ResNet ", v["image_size"], " width ", v["width"], " blocks ",
                                               v["resnet_layers"].dump());
      std::printf("%-20s %11.1fM  %s; text width %lld x%lld layers\n", m["name"].get<std::string>().c_str(),
                  m["parameters"].get<int64_t>() / 1e6, vision.c_str(), (long long)c["text"]["width"],
                  (long long)c["text"]["layers"]);
    }
  });
}

}  // namespace mmlearn::cli
