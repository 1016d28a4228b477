#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/models/generator.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_edit(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "edit",
      "redraw an image as a text says with a generator: SDEdit (noise it part of the way, then denoise "
      "with the new prompt)");
  struct Args {
    ModelArgs model;
    std::string image, text, out, sampler, precision = "fp32";
    int64_t n = 4, steps = 0;
    double guidance = 3, eta = 0, strength = 0.6, image_guidance = 1.5;
    uint64_t seed = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->image, "the picture to edit (PNG or JPEG at the model's size)")->required();
  cmd->add_option("--text", a->text, "what the result should show, e.g. \"a red circle\"")->required();
  auto* strength = cmd->add_option("--strength", a->strength,
                                   "SDEdit: how far the picture is noised before it is redrawn, (0, 1]: low "
                                   "keeps it, 1 keeps nothing")
                       ->capture_default_str();
  auto* image_guidance = cmd->add_option(
      "--image-guidance", a->image_guidance,
      "instruction editor: how closely the result keeps to the picture (default: the model's, 1.5)");
  cmd->add_option("--n", a->n, "results")->capture_default_str();
  auto* steps = cmd->add_option("--steps", a->steps, "denoising steps of a full run (default: the model's)");
  auto* guidance =
      cmd->add_option("--guidance", a->guidance, "classifier-free guidance scale (default: the model's)");
  cmd->add_option("--sampler", a->sampler, "ddpm, ddim, dpm++2m or dpm++2m-sde (default: the model's)");
  auto* eta = cmd->add_option("--eta", a->eta, "DDIM's η: 0 deterministic (the default) to 1, DDPM's noise");
  cmd->add_option("--precision", a->precision,
                  "the UNet's: fp32, bf16 (autocast; about 3x faster where the CPU has bf16) or auto")
      ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "random seed: result i uses seed + i")->capture_default_str();
  cmd->add_option("--out", a->out, "folder for the PNGs and sheet.png (created; must be empty)")->required();
  cmd->add_flag(
      "--json", a->json,
      "JSON on stdout: {\"text\", \"image\", \"method\" (instruct or sdedit), [\"strength\"], \"files\"}");
  cmd->callback([a, steps, guidance, eta, strength, image_guidance] {
    if (a->text.find_first_not_of(" \t\n") == std::string::npos)
      throw UsageError("--text is empty: say what the edited picture should show");
    check_guidance(image_guidance, "--image-guidance", a->image_guidance);
    check_strength(a->strength);
    if (a->n < 1 || a->n > 256) throw UsageError(str_cat("--n ", a->n, ": must be between 1 and 256"));
    check_steps(steps, a->steps);
    check_guidance(guidance, "--guidance", a->guidance);
    check_eta(eta, a->eta);
    const std::optional<Sampler> sampler = sampler_flag(a->sampler);
    const std::filesystem::path out = a->out;
    if (std::filesystem::exists(out) && !std::filesystem::is_empty(out))
      throw UsageError(str_cat("--out ", out.string(), " is not empty: choose a new folder"));
    auto model = open_model(a->model);
    GeneratorBundle& g = need<GeneratorBundle>(*model, "edit", "a generator (train --task generate)");
    const bool instruct = edits_by_instruction(g);
    check_edit_flags(g, strength->count() > 0, image_guidance->count() > 0);
    const data::Image image = data::read_image(a->image, {.max_pixels = 4096 * 4096});
    if (image.width != g.config.image_size || image.height != g.config.image_size)
      throw UsageError(str_cat("--image ", a->image, " is ", image.width, "x", image.height,
                               "; this generator edits ", g.config.image_size, "x", g.config.image_size,
                               " pictures: resize it first"));
    const auto source = torch::from_blob(const_cast<uint8_t*>(image.rgb.data()),
                                         {image.height, image.width, 3}, torch::kUInt8)
                            .permute({2, 0, 1})
                            .unsqueeze(0)
                            .contiguous();
    EditOptions options{.generate = {.sampler = sampler.value_or(g.config.sampler),
                                     .steps = steps->count() ? a->steps : g.config.sampling_steps,
                                     .guidance = guidance->count() ? a->guidance : g.config.guidance,
                                     .eta = a->eta,
                                     .precision = parse_precision(a->precision)},
                        .strength = a->strength};
    if (eta->count()) check_eta_applies(options.generate.sampler);
    if (!instruct) check_strength_leaves_a_step(a->strength, options.generate.steps);
    std::vector<torch::Tensor> all;
    Progress bar("edit", a->n, "img");
    for (int64_t i = 0; i < a->n; ++i) {
      options.generate.seed = a->seed + static_cast<uint64_t>(i);
      all.push_back(instruct ? edit_by_instruction(
                                   g, source, {a->text},
                                   {options.generate,
                                    image_guidance->count() ? a->image_guidance : g.config.image_guidance})
                             : edit(g, source, {a->text}, options));
      bar.update(i + 1);
    }
    bar.finish();
    const auto files = write_generated(out, torch::cat(all), a->n);
    nlohmann::json listing{
        {"text", a->text}, {"image", a->image}, {"method", instruct ? "instruct" : "sdedit"}};
    if (!instruct) listing["strength"] = a->strength;
    listing["files"] = nlohmann::json::array();
    for (const auto& f : files) listing["files"].push_back(f.string());
    if (a->json)
      std::cout << listing.dump() << "\n";
    else
      std::cout << a->text << ": " << files.size() << (files.size() == 1 ? " edit in " : " edits in ")
                << out.string() << "\ncontact sheet: " << (out / "sheet.png").string() << "\n";
  });
}

}  // namespace mmlearn::cli
