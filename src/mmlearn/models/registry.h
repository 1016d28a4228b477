// The model-family registry: each family (CLIP, CLAP, Whisper, the fusion classifier, ...) is one row that
// says what it is, which presets it has, how it opens every format it reads, how it trains (train/trainer.h
// asks it for a TrainTask) and what an opened model of it can do (embed, evaluate, predict). The CLI, the
// trainer and `mmlearn models` go through it; nothing outside models/ branches on a family's name. A new
// family is one more row: a file that fills a ModelFamily, and its line in registry.cpp.
//
//   auto model = mmlearn::open_model("run");               // whichever family the directory holds
//   nlohmann::json metrics = model->evaluate({.data = "shapes/test.jsonl"});
//   const mmlearn::ModelFamily& f = mmlearn::family_of_preset("clip-tiny");
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <typeinfo>
#include <vector>

#include "mmlearn/core/precision.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/heads/text_generation.h"
#include "mmlearn/train/train_options.h"
#include "mmlearn/train/train_task.h"

namespace mmlearn {

struct ModelFamily;

// How a model is opened: tokenizer files and the activation, for bare state dicts that carry neither.
struct OpenOptions {
  std::filesystem::path tokenizer;
  std::string activation;
};

struct EvalRequest {
  std::filesystem::path data;        // a manifest, or a directory holding test.jsonl
  std::filesystem::path classes;     // zero-shot classes (CLIP); empty: classes.json beside the manifest
  int64_t limit = 0;                 // the first N usable records; 0: all
  bool strict = false;               // the first bad record is an error
  std::vector<std::string> without;  // modalities left out of every record (classifiers)
  Precision precision = Precision::fp32;
  // Generators: the independently trained model that judges the pictures, where to keep what was drawn
  // (empty: nowhere) and how to draw (unset: the model's defaults).
  std::filesystem::path judge, samples;
  std::optional<std::string> sampler;
  std::optional<int64_t> steps;
  std::optional<double> guidance, eta;
  uint64_t seed = 0;
  // Edits: SDEdit's strength (a text-to-image generator) and an instruction editor's image guidance.
  std::optional<double> strength, image_guidance;
};

// One example to classify: any of an image file, a text and an audio file.
struct PredictRequest {
  std::filesystem::path image, audio;
  std::optional<std::string> text;
};

// An opened model of any family. A verb asks for what it needs; a family that cannot do it says so by name.
class Model {
 public:
  explicit Model(const ModelFamily& family) : family_(family) {}
  virtual ~Model() = default;
  const ModelFamily& family() const { return family_; }

  // The modalities embed() takes ("image", "text", "audio"); none for models without an embedding space.
  virtual std::vector<std::string> embeds() const { return {}; }
  // L2-normalized embeddings [N, E] of files (image, audio) or strings (text).
  virtual torch::Tensor embed(const std::string& modality, const std::vector<std::string>& inputs,
                              Precision precision);
  // Queries [N, E] in the space of embed("image") for images, each with a text that says what to change
  // ("make the circle red"): composed retrieval. By default the arithmetic baseline, normalize(image + text),
  // for a model that embeds images and texts; the composed family's combiner learns it.
  virtual torch::Tensor compose(const std::vector<std::string>& images, const std::vector<std::string>& texts,
                                Precision precision);
  // Held-out metrics (retrieval R@K, zero-shot accuracy, WER/CER, accuracy/F1, ...) and their human form.
  virtual nlohmann::json evaluate(const EvalRequest& request);
  virtual std::string format_metrics(const nlohmann::json& metrics) const;
  // The eval flags this family reads besides --data, --json and --precision ("classes", "limit", "strict",
  // "without"); the CLI refuses the others by name.
  virtual std::set<std::string> eval_flags() const { return {}; }
  // A label and what each modality contributes to it.
  virtual nlohmann::json predict(const PredictRequest& request);
  // What the model writes about an image: "caption", "vqa" (answers to questions) or "" (nothing).
  virtual std::string writes() const { return ""; }
  // A caption (empty prompt) or an answer to the prompt, for each image file.
  virtual std::vector<std::string> describe(const std::vector<std::filesystem::path>& images,
                                            const std::vector<std::string>& prompts,
                                            const GenerationOptions& options);

  // The family's own bundle (ClipBundle, WhisperBundle, ...), for the verbs that only one kind of model has
  // (zero-shot, transcribe, dump); nullptr when this model is of another kind.
  template <class Bundle>
  Bundle* bundle() {
    return static_cast<Bundle*>(bundle_of(typeid(Bundle)));
  }

 protected:
  virtual void* bundle_of(const std::type_info&) { return nullptr; }
  [[noreturn]] void cannot(const std::string& what) const;

 private:
  const ModelFamily& family_;
};

struct PresetInfo {
  std::string name;
  int64_t parameters = 0;
  std::string summary;  // one line: the architecture in words
  nlohmann::json config;
};

struct ModelFamily {
  std::string model_type;  // config.json's "model_type" of its model directories
  std::string task;        // what `train --task` calls it: contrastive, speech, composed, ...
  std::string summary;     // one line, for `mmlearn models`
  std::vector<std::string> presets;
  std::string default_preset;
  std::function<PresetInfo(const std::string& preset)> describe;
  // Whether `path` holds a model of this family in any format it reads (without reading weights).
  std::function<bool(const std::filesystem::path& path)> holds;
  std::function<std::unique_ptr<Model>(const std::filesystem::path& path, const OpenOptions& options)> open;

  // Training: the family flags it reads (train_options.h family_flags()), its defaults for the options
  // left unset (JSON keyed by flag name), and the task. `resume_from` is the model directory of the
  // checkpoint to continue from, or empty for a new run; `train` the training records (--data's).
  std::set<std::string> train_flags;
  nlohmann::json train_defaults;
  std::function<std::unique_ptr<TrainTask>(const TrainOptions& options,
                                           const std::filesystem::path& resume_from, data::Manifest train)>
      make_train_task;
};

const std::vector<ModelFamily>& model_families();
// Errors list what exists: an unknown preset or task is a UsageError, a path no family reads an Error.
const ModelFamily& family_of_preset(const std::string& preset);
const ModelFamily& family_of_task(const std::string& task);
const ModelFamily& family_of_model(const std::filesystem::path& path);
const ModelFamily& family_of_type(const std::string& model_type);
std::unique_ptr<Model> open_model(const std::filesystem::path& path, const OpenOptions& options = {});

// The families' rows (models/*_family.cpp).
ModelFamily clip_family();
ModelFamily clap_family();
ModelFamily whisper_family();
ModelFamily fusion_classifier_family();
ModelFamily composed_family();
ModelFamily captioner_family();
ModelFamily vqa_family();
ModelFamily generator_family();

}  // namespace mmlearn
