#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/diffusion/sampler.h"
#include "mmlearn/models/registry.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval",
      "evaluate a model on a manifest: retrieval R@K and zero-shot accuracy (CLIP), audio↔text R@K (CLAP), "
      "WER/CER (Whisper), accuracy and macro-F1 (classifiers), what a generator draws as a judge reads it "
      "(per-attribute accuracy, attribute binding and relations, CLIP score, Frechet distance) or edits "
      "(on edit triplets: the change made and the rest kept)");
  struct Args {
    ModelArgs model;
    std::string data, classes, precision = "fp32";
    bool json = false, strict = false;
    int64_t limit = 0;
    std::vector<std::string> without;
    std::string task, judge, samples, sampler;
    int64_t steps = 0;
    double guidance = 0, eta = 0, strength = 0.6, image_guidance = 1.5;
    uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--data", a->data, "manifest (.jsonl), or a directory holding test.jsonl")->required();
  cmd->add_option("--classes", a->classes,
                  "CLIP: zero-shot classes file (default: classes.json beside the manifest)");
  cmd->add_option("--precision", a->precision,
                  "fp32 (exact), bf16 or auto (a generator: its UNet and the judge)")
      ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
      ->capture_default_str();
  cmd->add_flag("--strict", a->strict, "fail on a bad record instead of skipping it");
  cmd->add_flag("--json", a->json, "JSON on stdout");
  cmd->add_option("--limit", a->limit, "evaluate only the first N usable records")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--without", a->without,
                  "classifiers: leave these modalities out of every record (comma list)")
      ->delimiter(',');
  cmd->add_option("--task", a->task, "the task the model must have been trained for (e.g. generate)");
  cmd->add_option("--judge", a->judge,
                  "generate: a CLIP trained apart from the generator, which reads the drawn pictures");
  cmd->add_option("--samples", a->samples,
                  "generate: keep the drawn images and prompts.json here (new folder)");
  cmd->add_option("--sampler", a->sampler,
                  "generate: ddpm, ddim, dpm++2m or dpm++2m-sde (default: the model's)");
  auto* eta = cmd->add_option("--eta", a->eta, "generate: DDIM's η, 0 (deterministic, the default) to 1");
  auto* steps = cmd->add_option("--steps", a->steps, "generate: denoising steps (default: the model's)");
  auto* guidance =
      cmd->add_option("--guidance", a->guidance, "generate: guidance scale (default: the model's)");
  cmd->add_option("--seed", a->seed, "generate: random seed")->capture_default_str();
  auto* strength = cmd->add_option("--strength", a->strength,
                                   "generate, on edit triplets: SDEdit's strength (default 0.6)");
  auto* image_guidance = cmd->add_option("--image-guidance", a->image_guidance,
                                         "an instruction editor: its image guidance (default: the model's)");
  cmd->callback([a, cmd, steps, guidance, eta, strength, image_guidance] {
    check_steps(steps, a->steps);
    check_guidance(guidance, "--guidance", a->guidance);
    check_guidance(image_guidance, "--image-guidance", a->image_guidance);
    check_eta(eta, a->eta);
    check_strength(a->strength);
    if (!a->sampler.empty()) parse_sampler(a->sampler);
    auto model = open_model(a->model);
    if (!a->task.empty() && a->task != model->family().task)
      throw UsageError(str_cat("--task ", a->task, ": ", a->model.model, " is a ", model->family().model_type,
                               " model, which does ", model->family().task));
    const auto reads = model->eval_flags();
    for (const char* flag : {"classes", "limit", "strict", "without", "judge", "samples", "sampler", "steps",
                             "guidance", "eta", "seed", "strength", "image-guidance"})
      if (cmd->count(std::string("--") + flag) && !reads.count(flag))
        throw UsageError(str_cat("--", flag, " does not apply to a ", model->family().model_type, " model"));
    const auto metrics = model->evaluate(
        {.data = a->data,
         .classes = a->classes,
         .limit = a->limit,
         .strict = a->strict,
         .without = a->without,
         .precision = parse_precision(a->precision),
         .judge = a->judge,
         .samples = a->samples,
         .sampler = a->sampler.empty() ? std::nullopt : std::optional<std::string>(a->sampler),
         .steps = steps->count() ? std::optional<int64_t>(a->steps) : std::nullopt,
         .guidance = guidance->count() ? std::optional<double>(a->guidance) : std::nullopt,
         .eta = eta->count() ? std::optional<double>(a->eta) : std::nullopt,
         .seed = a->seed,
         .strength = strength->count() ? std::optional<double>(a->strength) : std::nullopt,
         .image_guidance =
             image_guidance->count() ? std::optional<double>(a->image_guidance) : std::nullopt});
    if (a->json)
      std::cout << metrics.dump() << "\n";
    else
      std::cout << model->format_metrics(metrics);
  });
}

}  // namespace mmlearn::cli
