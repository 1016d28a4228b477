#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/fusion/fusion.h"
#include "mmlearn/models/registry.h"

namespace mmlearn::cli {

void add_models(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("models", "list the model families with their presets, and the fusion methods");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "JSON on stdout");
  cmd->callback([as_json] {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& family : model_families()) {
      if (!*as_json)
        std::printf("%s — %s (train --task %s)\n", family.model_type.c_str(), family.summary.c_str(),
                    family.task.c_str());
      for (const auto& name : family.presets) {
        const PresetInfo p = family.describe(name);
        out.push_back({{"name", p.name},
                       {"model_type", family.model_type},
                       {"task", family.task},
                       {"parameters", p.parameters},
                       {"summary", p.summary},
                       {"config", p.config}});
        if (!*as_json)
          std::printf("  %-22s %9.1fM  %s\n", p.name.c_str(), p.parameters / 1e6, p.summary.c_str());
      }
      if (!*as_json) std::printf("\n");
    }
    if (!*as_json)
      std::printf("%-22s %-7s %s\n", "fusion (--fusion)", "family", "for `train --task classify`");
    for (const auto& f : fusion_catalogue()) {
      out.push_back({{"name", f.name}, {"kind", "fusion"}, {"family", f.family}, {"summary", f.summary}});
      if (!*as_json) std::printf("%-22s %-7s %s\n", f.name.c_str(), f.family.c_str(), f.summary.c_str());
    }
    if (*as_json) std::cout << out.dump() << "\n";
  });
}

}  // namespace mmlearn::cli
