// The fusion benchmark: on one labelled multimodal data set (the mood task by default), train a unimodal
// model per modality and a classifier with every fusion method, all with the same encoders, steps and seed,
// and report held-out accuracy, macro-F1, accuracy with each modality removed, parameters and training time
// — as JSON, a Markdown table and an SVG bar chart.
//
//   auto result = mmlearn::run_fusion_bench({.data = "mood", .work = "bench-runs", .steps = 600});
//   mmlearn::write_fusion_bench(result, "docs");  // docs/fusion_bench.{md,svg,json}
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn {

struct FusionBenchOptions {
  std::filesystem::path data;  // directory with train.jsonl, test.jsonl [and ceiling.json]
  std::filesystem::path work;  // where the trained runs go (one directory each)
  std::vector<std::string> modalities = {"image", "text"};
  std::vector<std::string> methods;  // empty: every fusion method
  int64_t steps = 600;
  int64_t batch_size = 64;
  uint64_t seed = 0;
};

// {"data", "steps", "seed", "threads", "cpu", "ceiling" (ceiling.json or null), "rows": [{"name", "family",
// "modalities", "accuracy", "macro_f1", "without": {modality: accuracy}, "parameters", "seconds"}]}
nlohmann::json run_fusion_bench(const FusionBenchOptions& options);

// fusion_bench.json, fusion_bench.md (the table) and fusion_bench.svg (accuracy per method, with the
// unimodal ceiling marked), written atomically into out_dir.
void write_fusion_bench(const nlohmann::json& result, const std::filesystem::path& out_dir);

}  // namespace mmlearn
