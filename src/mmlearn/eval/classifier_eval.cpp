#include "mmlearn/eval/classifier_eval.h"

#include <torch/torch.h>

#include "mmlearn/core/error.h"
#include "mmlearn/eval/classification.h"

namespace mmlearn {
using data::MultimodalExample;
using nlohmann::json;

namespace {

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

}  // namespace

json evaluate_fusion_classifier(FusionClassifierBundle& bundle, const data::MultimodalDataset& ds,
                                const std::set<std::string>& hide) {
  check(!ds.examples.empty(), "classifier evaluation: no usable records");
  torch::NoGradGuard no_grad;
  std::vector<int64_t> predicted, target;
  for (size_t start = 0; start < ds.examples.size(); start += 128) {
    std::vector<const MultimodalExample*> batch;
    for (size_t i = start; i < std::min(ds.examples.size(), start + 128); ++i) {
      check(ds.examples[i].label >= 0, "classifier evaluation: record ", ds.examples[i].id, " has no label");
      batch.push_back(&ds.examples[i]);
      target.push_back(ds.examples[i].label);
    }
    auto labels = bundle.model->forward(make_classifier_batch(bundle, batch, hide)).logits.argmax(1);
    for (int64_t i = 0; i < labels.size(0); ++i) predicted.push_back(labels[i].item<int64_t>());
  }
  return classification_metrics(predicted, target, bundle.model->config.labels);
}

json predict_with_ablation(FusionClassifierBundle& bundle, const MultimodalExample& example) {
  torch::NoGradGuard no_grad;
  const auto& labels = bundle.model->config.labels;
  auto probabilities = [&](const std::set<std::string>& hide) {
    return to_vector(
        torch::softmax(bundle.model->forward(make_classifier_batch(bundle, {&example}, hide)).logits[0], 0));
  };
  auto named = [&](const std::vector<double>& p) {
    json out = json::object();
    for (size_t i = 0; i < labels.size(); ++i) out[labels[i]] = p[i];
    return out;
  };
  std::vector<std::string> used;
  for (const auto& m : bundle.model->config.modalities)
    if ((m == "image" && example.pixels.defined()) || (m == "text" && example.text) ||
        (m == "audio" && example.audio))
      used.push_back(m);
  check(!used.empty(), "predict: no input the model reads (give one of its modalities)");
  const auto p = probabilities({});
  const auto best = size_t(std::max_element(p.begin(), p.end()) - p.begin());
  json without = json::object();
  for (const auto& m : used) {
    if (used.size() == 1) {
      without[m] = nullptr;  // nothing would be left to predict from
      continue;
    }
    const auto q = probabilities({m});
    const auto q_best = size_t(std::max_element(q.begin(), q.end()) - q.begin());
    without[m] = {{"label", labels[q_best]}, {"probabilities", named(q)}, {"change", q[best] - p[best]}};
  }
  return {{"label", labels[best]}, {"probabilities", named(p)}, {"used", used}, {"without", without}};
}

}  // namespace mmlearn
