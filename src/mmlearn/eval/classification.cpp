#include "mmlearn/eval/classification.h"

#include "mmlearn/core/error.h"

namespace mmlearn {

nlohmann::json classification_metrics(const std::vector<int64_t>& predicted,
                                      const std::vector<int64_t>& target,
                                      const std::vector<std::string>& labels) {
  check(predicted.size() == target.size(), "classification metrics: ", predicted.size(), " predictions for ",
        target.size(), " targets");
  check(!target.empty(), "classification metrics: no examples");
  const auto C = labels.size();
  std::vector<std::vector<int64_t>> confusion(C, std::vector<int64_t>(C, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < target.size(); ++i) {
    check(target[i] >= 0 && size_t(target[i]) < C && predicted[i] >= 0 && size_t(predicted[i]) < C,
          "classification metrics: class index out of range at example ", i);
    ++confusion[size_t(target[i])][size_t(predicted[i])];
    correct += predicted[i] == target[i];
  }
  nlohmann::json per_class = nlohmann::json::object();
  double f1_sum = 0;
  for (size_t c = 0; c < C; ++c) {
    int64_t predicted_c = 0, support = 0;
    for (size_t k = 0; k < C; ++k) {
      predicted_c += confusion[k][c];
      support += confusion[c][k];
    }
    const double tp = double(confusion[c][c]);
    const double precision = predicted_c ? tp / double(predicted_c) : 0.0;
    const double recall = support ? tp / double(support) : 0.0;
    const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
    f1_sum += f1;
    per_class[labels[c]] = {{"precision", precision}, {"recall", recall}, {"f1", f1}, {"support", support}};
  }
  return {{"n", target.size()},
          {"accuracy", double(correct) / double(target.size())},
          {"macro_f1", f1_sum / double(C)},
          {"per_class", per_class},
          {"labels", labels},
          {"confusion", confusion}};
}

}  // namespace mmlearn
