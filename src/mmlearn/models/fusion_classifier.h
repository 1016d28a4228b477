// A multimodal classifier: one encoder per modality (any subset of image, text, audio), a fusion
// (fusion/fusion.h) and a head. Encoders are trained from scratch at one width `dim`, which is also the
// fusion's: the image a small convolution stack (vision/conv_encoder.h), the text CLIP's text transformer,
// the audio Whisper's encoder mean-pooled over the positions that hold sound. Late fusions predict
// themselves, so their head is the identity; the others get a two-layer MLP.
//
// A modality can be missing for the whole batch (its input left undefined) or for some examples (its
// `present` row false): the fusion then masks it, so a model answers with whatever it is given.
//
// A model directory is config.json ("model_type": "fusion_classifier") + model.safetensors, plus
// vocab.json + merges.txt when it reads text.
//
//   auto bundle = mmlearn::load_fusion_classifier("run");
//   auto logits = bundle.model->forward(inputs).logits;  // [B, labels]
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mmlearn/data/multimodal_dataset.h"
#include "mmlearn/fusion/fusion.h"
#include "mmlearn/models/clap.h"
#include "mmlearn/text/bpe.h"
#include "mmlearn/text/text_transformer.h"
#include "mmlearn/vision/conv_encoder.h"

namespace mmlearn {

const std::vector<std::string>& classifier_modalities();  // image, text, audio

struct FusionClassifierConfig {
  std::vector<std::string> modalities = {"image", "text"};
  std::vector<std::string> labels;
  int64_t dim = 64;     // every encoder's width and the fusion's
  int64_t hidden = 64;  // the head's hidden layer
  FusionConfig fusion;  // method and its sizes; its modalities, dim and n_outputs follow the fields above
  ConvEncoderConfig image{.image_size = 48, .channels = {32, 64, 64}};
  TextConfig text{.context_length = 32, .vocab_size = 512, .layers = 2, .heads = 4};
  ClapAudioConfig audio{.n_ctx = 200, .heads = 4, .layers = 2};  // a 4 s window
};

nlohmann::json to_json(const FusionClassifierConfig& config);
bool reads_modality(const FusionClassifierConfig& config, const std::string& modality);
FusionClassifierConfig fusion_classifier_config_from_json(const nlohmann::json& json,
                                                          const std::string& where);

// A batch. An undefined input means the modality is absent from every example; `present` (bool [B], per
// modality) marks it absent from some. Pixels are uint8 [B, 3, S, S]; ids [B, T]; mel [B, n_mels, 2 * n_ctx]
// with each clip's length in 16 kHz samples [B].
struct ClassifierBatch {
  torch::Tensor pixels, ids, mel, samples;
  std::map<std::string, torch::Tensor> present;
};

struct ClassifierOutput {
  torch::Tensor logits;     // [B, labels]
  EncoderOutput fused;      // the fusion's output (for late fusions: each modality's logits in tokens)
  ModalityOutputs encoded;  // each encoder's output, masked as the fusion saw it
};

struct FusionClassifierImpl : torch::nn::Module {
  explicit FusionClassifierImpl(const FusionClassifierConfig& config);
  ModalityOutputs encode(const ClassifierBatch& batch);
  ClassifierOutput forward(const ClassifierBatch& batch);

  FusionClassifierConfig config;
  ConvEncoder image{nullptr};
  TextTransformer text{nullptr};
  WhisperEncoder audio{nullptr};
  std::shared_ptr<FusionImpl> fusion;
  torch::nn::Sequential head{nullptr};  // absent for late fusions
};
TORCH_MODULE(FusionClassifier);

struct FusionClassifierBundle {
  FusionClassifier model{nullptr};
  std::optional<text::BpeTokenizer> tokenizer;  // when the model reads text
};

// The model's inputs for some examples; modalities in `hide` are left out as if the records lacked them.
ClassifierBatch make_classifier_batch(const FusionClassifierBundle& bundle,
                                      const std::vector<const data::MultimodalExample*>& examples,
                                      const std::set<std::string>& hide = {});

// Modality dropout: hides each modality of each example with probability p (in `present`), but never every
// modality an example has. The batch is rows [offset, offset + B) of a micro-batch of `group` examples
// (data-parallel training): the draws are the group's, so they do not depend on how it is split.
void drop_modalities(ClassifierBatch& batch, double p, torch::Generator& generator, int64_t offset,
                     int64_t group);

// Reads a manifest with the model's modalities and labels (labels optional when require_labels is false).
data::MultimodalDataset load_classifier_data(const FusionClassifierBundle& bundle,
                                             const std::filesystem::path& manifest,
                                             bool require_labels = true);

void save_fusion_classifier(const std::filesystem::path& dir, const FusionClassifierBundle& bundle);
FusionClassifierBundle load_fusion_classifier(const std::filesystem::path& dir);  // in evaluation mode

}  // namespace mmlearn
