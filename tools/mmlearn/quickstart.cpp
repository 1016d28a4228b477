#include "mmlearn/train/quickstart.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"

namespace mmlearn::cli {

void add_quickstart(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "quickstart",
      "make shapes data, train clip-tiny, evaluate, search, and write a report (a few minutes)");
  auto o = std::make_shared<QuickstartOptions>();
  auto out = std::make_shared<std::string>(o->out.string());
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("--out", *out, "working directory (shapes/ and run/ go inside)")->capture_default_str();
  cmd->add_option("--train", o->n_train, "training scenes")->capture_default_str();
  cmd->add_option("--test", o->n_test, "held-out scenes")->capture_default_str();
  cmd->add_option("--steps", o->steps, "training steps")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "examples per step")->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_flag("--json", *as_json, "print the held-out metrics as JSON on stdout");
  cmd->callback([=] {
    o->out = *out;
    QuickstartResult r = run_quickstart(*o);
    if (*as_json) {
      std::cout << nlohmann::json{{"run", r.run},
                                  {"report", r.report},
                                  {"seconds", r.seconds},
                                  {"eval", r.eval}}
                       .dump()
                << "\n";
      return;
    }
    const auto& t2i = r.eval["retrieval"]["text_to_image"];
    std::printf("done in %.0f s. held-out text→image R@1 %.1f%%  R@10 %.1f%%", r.seconds,
                100 * t2i["R@1"].get<double>(), 100 * t2i["R@10"].get<double>());
    if (r.eval.contains("zero_shot"))
      for (auto it = r.eval["zero_shot"].begin(); it != r.eval["zero_shot"].end(); ++it)
        std::printf("  zero-shot %s %.1f%%", it.key().c_str(), 100 * it.value().get<double>());
    std::printf("\nmodel: %s   report: %s\n", r.run.c_str(), r.report.c_str());
  });
}

}  // namespace mmlearn::cli
