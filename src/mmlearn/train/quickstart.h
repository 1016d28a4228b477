// The first job a new user runs: make the shapes data, learn a tokenizer, train clip-tiny, evaluate it on
// held-out scenes, run a few text→image searches and write OUT/run/report.html — minutes on a laptop CPU.
//
//   mmlearn::QuickstartResult r = mmlearn::run_quickstart({.out = "quickstart"});
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn {

struct QuickstartOptions {
  std::filesystem::path out = "mmlearn-quickstart";
  int64_t n_train = 20000;
  int64_t n_test = 1000;
  int64_t steps = 560;
  int64_t batch_size = 128;
  uint64_t seed = 0;
  std::vector<std::string> queries = {"a large red circle", "a small blue square", "a yellow star",
                                      "a green triangle left of a purple diamond", "a striped orange square"};
};

struct QuickstartResult {
  std::filesystem::path run, report;
  nlohmann::json eval;
  double seconds = 0;
};

QuickstartResult run_quickstart(const QuickstartOptions& options);

}  // namespace mmlearn
