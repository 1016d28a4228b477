#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_caption(CLI::App& app) {
  auto* cmd = app.add_subcommand("caption",
                                 "write a caption for each image with a captioner (trained here, or BLIP)");
  struct Args {
    ModelArgs model;
    std::vector<std::string> images;
    std::string prompt;
    GenerationOptions generation;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->images, "image file (repeatable)")->required();
  cmd->add_option(
      "--prompt", a->prompt,
      "how every caption starts; the model continues it (BLIP captioners, e.g. \"a picture of\")");
  add_generation_options(cmd, a->generation);
  cmd->add_flag("--json", a->json, "JSON on stdout: [{\"image\", \"caption\"}...]");
  cmd->callback([a] {
    check_generation_options(a->generation);
    auto model = open_model(a->model);
    need_writer(*model, "caption", "caption");
    nlohmann::json out = nlohmann::json::array();
    constexpr size_t kBatch = 16;
    for (size_t start = 0; start < a->images.size(); start += kBatch) {
      const std::vector<std::filesystem::path> images(
          a->images.begin() + long(start),
          a->images.begin() + long(std::min(a->images.size(), start + kBatch)));
      const auto captions =
          model->describe(images, std::vector<std::string>(images.size(), a->prompt), a->generation);
      for (size_t i = 0; i < images.size(); ++i) {
        if (a->json)
          out.push_back({{"image", images[i].string()}, {"caption", captions[i]}});
        else
          std::cout << images[i].string() << ": " << captions[i] << "\n" << std::flush;
      }
    }
    if (a->json) std::cout << out.dump() << "\n";
  });
}

}  // namespace mmlearn::cli
