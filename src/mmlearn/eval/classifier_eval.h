// Evaluating and using a multimodal classifier (models/fusion_classifier.h): accuracy, macro-F1, per-class
// scores and the confusion matrix over a data set, and one example's prediction with what each modality
// contributes to it.
//
//   auto metrics = mmlearn::evaluate_fusion_classifier(bundle, test);            // {"accuracy", "macro_f1",
//   ...} auto without_image = mmlearn::evaluate_fusion_classifier(bundle, test, {"image"});
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "mmlearn/data/multimodal_dataset.h"
#include "mmlearn/models/fusion_classifier.h"

namespace mmlearn {

// Accuracy, macro-F1, per-class scores and the confusion matrix (eval/classification.h), in batches, with
// the modalities in `hide` left out of every example.
nlohmann::json evaluate_fusion_classifier(FusionClassifierBundle& bundle, const data::MultimodalDataset& ds,
                                          const std::set<std::string>& hide = {});

// One example: {"label", "probabilities": {label: p}, "used": [modalities], "without": {modality: {"label",
// "probabilities", "change"}}} where "change" is how much the predicted label's probability moves when that
// modality is removed (null when it is the only one given).
nlohmann::json predict_with_ablation(FusionClassifierBundle& bundle, const data::MultimodalExample& example);

}  // namespace mmlearn
