#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_ask(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "ask", "answer questions about images with a question answerer (trained here, or BLIP)");
  struct Args {
    ModelArgs model;
    std::vector<std::string> images, questions;
    GenerationOptions generation;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->images, "image file (repeatable)")->required();
  cmd->add_option("--question", a->questions, "what to ask of every image (repeatable)")->required();
  add_generation_options(cmd, a->generation);
  cmd->add_flag("--json", a->json, "JSON on stdout: [{\"image\", \"question\", \"answer\"}...]");
  cmd->callback([a] {
    check_generation_options(a->generation);
    for (const auto& q : a->questions)
      if (q.find_first_not_of(" \t\r\n") == std::string::npos)
        throw UsageError("--question is empty: ask something, e.g. --question \"what color is the star?\"");
    auto model = open_model(a->model);
    need_writer(*model, "ask", "vqa");
    nlohmann::json out = nlohmann::json::array();
    for (const auto& image : a->images) {
      const auto answers = model->describe(std::vector<std::filesystem::path>(a->questions.size(), image),
                                           a->questions, a->generation);
      if (!a->json) std::cout << image << "\n";
      for (size_t i = 0; i < answers.size(); ++i) {
        if (a->json)
          out.push_back({{"image", image}, {"question", a->questions[i]}, {"answer", answers[i]}});
        else
          std::cout << "  " << a->questions[i] << "  " << answers[i] << "\n" << std::flush;
      }
    }
    if (a->json) std::cout << out.dump() << "\n";
  });
}

}  // namespace mmlearn::cli
