// Training a multimodal classifier (models/fusion_classifier.h) on labelled records: a tokenizer learned from
// the training text, cross-entropy on the fused prediction plus auxiliary per-modality losses, modality
// dropout (each modality of each example is hidden with some probability, never all of them, so the model
// learns to answer with what it is given),
// AdamW with warm-up and cosine decay, and held-out accuracy / macro-F1 as it goes.
//
//   mmlearn::FusionTrainOptions o{.data = "mood", .out = "run", .fusion = "cross-attention"};
//   auto result = mmlearn::train_fusion_classifier(o);
//   auto metrics = mmlearn::evaluate_fusion_classifier(bundle, test);  // {"accuracy", "macro_f1", ...}
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "mmlearn/data/multimodal_dataset.h"
#include "mmlearn/models/fusion_classifier.h"

namespace mmlearn {

struct FusionTrainOptions {
  std::filesystem::path data;  // directory with train.jsonl (+ test.jsonl) or a manifest
  std::filesystem::path out;
  std::vector<std::string> modalities = {"image", "text"};
  std::string fusion = "concat";
  std::string label_field = "label";
  FusionClassifierConfig model;  // sizes; modalities, labels and the fusion method are set from the above
  int64_t vocab_size = 640;      // the 512 byte symbols, 2 specials and the merges
  int64_t steps = 0;             // one of steps / minutes; none: 20 epochs
  double minutes = 0;
  int64_t batch_size = 64;
  double learning_rate = 2e-3;
  double weight_decay = 0.01;
  int64_t warmup_steps = 0;  // 0: 5% of the steps
  double grad_clip = 1.0;
  double modality_dropout = 0.15;
  // Weight of auxiliary per-modality losses: a linear classifier on each encoder's pooled output, trained
  // with the fused loss and dropped afterwards (as Gradient-Blending: Wang, Tran & Feiszli, 2020). A modality
  // that learns slowly (the faces here) otherwise stays unused once a quicker one (the words) explains what
  // it can.
  double unimodal_loss = 0.5;
  uint64_t seed = 0;
  int64_t eval_every = 0;  // steps; 0: about 5 times a run
};

struct FusionTrainResult {
  int64_t steps = 0;
  double seconds = 0, final_loss = 0;
  int64_t skipped_records = 0, parameters = 0;
  nlohmann::json final_eval;  // evaluate_fusion_classifier on test.jsonl; null without one
};

FusionTrainResult train_fusion_classifier(const FusionTrainOptions& options);

// Modality dropout: hides each modality of each example with probability p (in `present`), but never every
// modality an example has.
void drop_modalities(ClassifierBatch& batch, double p, torch::Generator& generator);

// The model's inputs for some examples; modalities in `hide` are left out as if the records lacked them.
ClassifierBatch make_classifier_batch(const FusionClassifierBundle& bundle,
                                      const std::vector<const data::MultimodalExample*>& examples,
                                      const std::set<std::string>& hide = {});

// Reads a manifest with the model's modalities and labels (labels optional when require_labels is false).
data::MultimodalDataset load_classifier_data(const FusionClassifierBundle& bundle,
                                             const std::filesystem::path& manifest,
                                             bool require_labels = true);

// Accuracy, macro-F1, per-class scores and the confusion matrix (eval/classification.h), in batches, with
// the modalities in `hide` left out of every example.
nlohmann::json evaluate_fusion_classifier(FusionClassifierBundle& bundle, const data::MultimodalDataset& ds,
                                          const std::set<std::string>& hide = {});

// One example: {"label", "probabilities": {label: p}, "used": [modalities], "without": {modality: {"label",
// "probabilities", "change"}}} where "change" is how much the predicted label's probability moves when that
// modality is removed (null when it is the only one given).
nlohmann::json predict_with_ablation(FusionClassifierBundle& bundle, const data::MultimodalExample& example);

}  // namespace mmlearn
