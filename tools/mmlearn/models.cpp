#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/fusion/fusion.h"
#include "mmlearn/models/clap.h"
#include "mmlearn/models/clip.h"
#include "mmlearn/models/whisper.h"

namespace mmlearn::cli {

void add_models(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("models", "list the model presets (CLIP, Whisper, CLAP) and the fusion methods");
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
    // Whisper sizes by formula: building large-v3 only to count it would allocate 6 GB.
    nlohmann::json speech = nlohmann::json::array();
    for (const auto& name : whisper_preset_names()) {
      const WhisperConfig c = whisper_preset(name);
      const int64_t d = c.n_audio_state, t = c.n_text_state;
      const int64_t encoder =
          3 * c.n_mels * d + d + 3 * d * d + d + c.n_audio_layer * (12 * d * d + 12 * d) + 2 * d;
      const int64_t decoder = (c.n_vocab + c.n_text_ctx) * t + c.n_text_layer * (16 * t * t + 17 * t) + 2 * t;
      speech.push_back({{"name", name}, {"parameters", encoder + decoder}, {"config", to_json(c)}});
    }
    nlohmann::json audio_text = nlohmann::json::array();
    for (const auto& name : clap_preset_names()) {
      const ClapConfig c = clap_preset(name);
      int64_t params = 0;
      for (const auto& p : Clap(c)->parameters()) params += p.numel();
      audio_text.push_back({{"name", name}, {"parameters", params}, {"config", to_json(c)}});
    }
    nlohmann::json fusions = nlohmann::json::array();
    for (const auto& f : fusion_catalogue())
      fusions.push_back({{"name", f.name}, {"kind", "fusion"}, {"family", f.family}, {"summary", f.summary}});
    if (*as_json) {
      for (const auto& m : speech) out.push_back(m);
      for (const auto& m : audio_text) out.push_back(m);
      for (const auto& f : fusions) out.push_back(f);
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
    std::printf("\n%-22s %10s  %s\n", "preset", "parameters", "audio encoder / text decoder");
    for (const auto& m : speech) {
      const auto& c = m["config"];
      std::printf(
          "%-22s %9.1fM  %lld mels, %lld positions, width %lld x%lld layers; x%lld layers, vocab %lld\n",
          m["name"].get<std::string>().c_str(), m["parameters"].get<int64_t>() / 1e6, (long long)c["n_mels"],
          (long long)c["n_audio_ctx"], (long long)c["n_audio_state"], (long long)c["n_audio_layer"],
          (long long)c["n_text_layer"], (long long)c["n_vocab"]);
    }
    std::printf("\n%-22s %10s  %s\n", "preset", "parameters", "audio / text");
    for (const auto& m : audio_text) {
      const auto& a = m["config"]["audio"];
      const auto& t = m["config"]["text"];
      std::printf(
          "%-22s %9.1fM  %lld mels, %lld positions, width %lld x%lld layers; text width %lld x%lld layers\n",
          m["name"].get<std::string>().c_str(), m["parameters"].get<int64_t>() / 1e6, (long long)a["n_mels"],
          (long long)a["n_ctx"], (long long)a["width"], (long long)a["layers"], (long long)t["width"],
          (long long)t["layers"]);
    }
    std::printf("\n%-22s %-7s %s\n", "fusion (--fusion)", "family", "for `train --task classify`");
    for (const auto& f : fusion_catalogue())
      std::printf("%-22s %-7s %s\n", f.name.c_str(), f.family.c_str(), f.summary.c_str());
  });
}

}  // namespace mmlearn::cli
