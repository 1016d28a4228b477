#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/models/registry.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval",
      "evaluate a model on a manifest: retrieval R@K and zero-shot accuracy (CLIP), audio↔text R@K (CLAP), "
      "WER/CER (Whisper), accuracy and macro-F1 (classifiers)");
  struct Args {
    ModelArgs model;
    std::string data, classes, precision = "fp32";
    bool json = false, strict = false;
    int64_t limit = 0;
    std::vector<std::string> without;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--data", a->data, "manifest (.jsonl), or a directory holding test.jsonl")->required();
  cmd->add_option("--classes", a->classes,
                  "CLIP: zero-shot classes file (default: classes.json beside the manifest)");
  cmd->add_option("--precision", a->precision, "fp32 (exact) or bf16")
      ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
      ->capture_default_str();
  cmd->add_flag("--strict", a->strict, "fail on a bad record instead of skipping it");
  cmd->add_flag("--json", a->json, "JSON on stdout");
  cmd->add_option("--limit", a->limit, "evaluate only the first N usable records")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--without", a->without,
                  "classifiers: leave these modalities out of every record (comma list)")
      ->delimiter(',');
  cmd->callback([a, cmd] {
    auto model = open_model(a->model);
    const auto reads = model->eval_flags();
    for (const char* flag : {"classes", "limit", "strict", "without"})
      if (cmd->count(std::string("--") + flag) && !reads.count(flag))
        throw UsageError(str_cat("--", flag, " does not apply to a ", model->family().model_type, " model"));
    const auto metrics = model->evaluate({.data = a->data,
                                          .classes = a->classes,
                                          .limit = a->limit,
                                          .strict = a->strict,
                                          .without = a->without,
                                          .precision = parse_precision(a->precision)});
    if (a->json)
      std::cout << metrics.dump() << "\n";
    else
      std::cout << model->format_metrics(metrics);
  });
}

}  // namespace mmlearn::cli
