// Classification metrics: accuracy, per-class precision / recall / F1, their unweighted mean (macro-F1, so
// that a rare class counts as much as a common one) and the confusion matrix.
//
//   nlohmann::json m = mmlearn::classification_metrics(predicted, target, {"negative", "neutral",
//   "positive"}); m["accuracy"], m["macro_f1"], m["per_class"]["neutral"]["f1"],
//   m["confusion"][true][predicted]
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn {

// predicted, target: class indices into labels, one per example.
nlohmann::json classification_metrics(const std::vector<int64_t>& predicted,
                                      const std::vector<int64_t>& target,
                                      const std::vector<std::string>& labels);

}  // namespace mmlearn
