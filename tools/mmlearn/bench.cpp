#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/train/fusion_bench.h"

namespace mmlearn::cli {

void add_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "benchmarks that train and compare models");
  bench->require_subcommand(1);
  auto* fusion = bench->add_subcommand(
      "fusion",
      "train a one-modality model per modality and a classifier with every fusion on a task; write "
      "a table and a plot");
  auto o = std::make_shared<FusionBenchOptions>();
  auto out = std::make_shared<std::string>("docs");
  auto as_json = std::make_shared<bool>(false);
  fusion
      ->add_option("--data", o->data,
                   "labelled multimodal data (`mmlearn data shapes --task mood --out DIR`)")
      ->required();
  fusion->add_option("--out", *out, "where fusion_bench.{md,svg,json} go")->capture_default_str();
  fusion->add_option("--work", o->work, "where the trained runs go (default: OUT/fusion_runs)");
  fusion->add_option("--modalities", o->modalities, "the modalities fused")
      ->delimiter(',')
      ->default_str("image,text");
  fusion->add_option("--methods", o->methods, "only these fusions (default: all)")->delimiter(',');
  fusion->add_option("--steps", o->steps, "optimizer steps per model")->capture_default_str();
  fusion->add_option("--batch-size", o->batch_size, "examples per step")->capture_default_str();
  fusion->add_option("--seed", o->seed, "random seed (the same for every model)")->capture_default_str();
  fusion->add_flag("--json", *as_json, "print the results as JSON on stdout");
  fusion->callback([=] {
    if (o->work.empty()) o->work = std::filesystem::path(*out) / "fusion_runs";
    const auto result = run_fusion_bench(*o);
    write_fusion_bench(result, *out);
    if (*as_json) {
      std::cout << result.dump() << "\n";
      return;
    }
    std::printf("%-22s %-9s %9s %9s %11s %9s\n", "model", "family", "accuracy", "macro-F1", "parameters",
                "seconds");
    for (const auto& r : result["rows"])
      std::printf("%-22s %-9s %8.1f%% %8.1f%% %11lld %9.0f\n", r["name"].get<std::string>().c_str(),
                  r["family"].get<std::string>().c_str(), 100 * r["accuracy"].get<double>(),
                  100 * r["macro_f1"].get<double>(), (long long)r["parameters"].get<int64_t>(),
                  r["seconds"].get<double>());
    std::cerr << "wrote " << *out << "/fusion_bench.md, fusion_bench.svg and fusion_bench.json\n";
  });
}

}  // namespace mmlearn::cli
