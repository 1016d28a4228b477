#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/models/generator.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate",
                                 "draw images from a text prompt with a generator (train --task generate)");
  struct Args {
    ModelArgs model;
    std::vector<std::string> texts;
    std::string out, sampler, precision = "fp32";
    int64_t n = 4, steps = 0;
    double guidance = 3, eta = 0;
    uint64_t seed = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--text", a->texts, "what to draw (repeatable: each prompt gets --n images)")->required();
  cmd->add_option("--n", a->n, "images a prompt")->capture_default_str();
  auto* steps = cmd->add_option("--steps", a->steps, "denoising steps (default: the model's, 25)");
  auto* guidance = cmd->add_option("--guidance", a->guidance,
                                   "classifier-free guidance scale; 1: none (default: the model's, 3)");
  cmd->add_option("--sampler", a->sampler, "ddpm, ddim, dpm++2m or dpm++2m-sde (default: the model's)");
  auto* eta = cmd->add_option("--eta", a->eta, "DDIM's η: 0 deterministic (the default) to 1, DDPM's noise");
  cmd->add_option("--precision", a->precision,
                  "the UNet's: fp32, bf16 (autocast; about 3x faster where the CPU has bf16) or auto")
      ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "random seed: the same seed and prompt draw the same images")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "folder for the PNGs and sheet.png (created; must be empty)")->required();
  cmd->add_flag("--json", a->json, "JSON on stdout: [{\"text\", \"seed\", \"files\"}...]");
  cmd->callback([a, steps, guidance, eta] {
    for (const auto& t : a->texts)
      if (t.find_first_not_of(" \t\n") == std::string::npos)
        throw UsageError("--text is empty: say what to draw");
    if (a->n < 1 || a->n > 256) throw UsageError(str_cat("--n ", a->n, ": must be between 1 and 256"));
    check_steps(steps, a->steps);
    check_guidance(guidance, "--guidance", a->guidance);
    check_eta(eta, a->eta);
    const std::filesystem::path out = a->out;
    if (std::filesystem::exists(out) && !std::filesystem::is_empty(out))
      throw UsageError(str_cat("--out ", out.string(), " is not empty: choose a new folder"));
    const std::optional<Sampler> sampler = sampler_flag(a->sampler);
    auto model = open_model(a->model);
    GeneratorBundle& g = need<GeneratorBundle>(*model, "generate", "a generator (train --task generate)");
    if (edits_by_instruction(g))
      throw UsageError(str_cat(a->model.model, " is an instruction editor: it changes a picture (use edit)"));
    GenerateOptions options{.sampler = sampler.value_or(g.config.sampler),
                            .steps = steps->count() ? a->steps : g.config.sampling_steps,
                            .guidance = guidance->count() ? a->guidance : g.config.guidance,
                            .eta = a->eta,
                            .seed = a->seed,
                            .precision = parse_precision(a->precision)};
    if (eta->count()) check_eta_applies(options.sampler);
    nlohmann::json listing = nlohmann::json::array();
    std::vector<torch::Tensor> all;
    for (size_t i = 0; i < a->texts.size(); ++i) {
      Progress bar(str_cat("generate ", i + 1, "/", a->texts.size()), options.steps, "step");
      options.progress = [&](int64_t step, int64_t) { bar.update(step); };
      options.seed = a->seed + i;
      all.push_back(generate(g, std::vector<std::string>(static_cast<size_t>(a->n), a->texts[i]), options));
      bar.finish();
    }
    const auto files = write_generated(out, torch::cat(all), a->n);
    for (size_t i = 0; i < a->texts.size(); ++i) {
      std::vector<std::string> mine;
      for (int64_t k = 0; k < a->n; ++k) mine.push_back(files[i * static_cast<size_t>(a->n) + k].string());
      listing.push_back({{"text", a->texts[i]}, {"seed", a->seed + i}, {"files", mine}});
      if (!a->json)
        std::cout << a->texts[i] << ": " << mine.size() << (mine.size() == 1 ? " image in " : " images in ")
                  << out.string() << "\n";
    }
    if (a->json)
      std::cout << listing.dump() << "\n";
    else
      std::cout << "contact sheet: " << (out / "sheet.png").string() << "\n";
  });
}

}  // namespace mmlearn::cli
