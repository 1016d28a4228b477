// The multimodal classifier's row in the registry (models/fusion_classifier.h): trained on labelled records
// with any fusion, cross-entropy on the fused prediction plus auxiliary per-modality losses
// (heads/unimodal.h) and modality dropout (each modality of each example hidden with some probability, never
// all of them, so the model learns to answer with what it is given); eval and predict open it.
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/precision.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/classifier_eval.h"
#include "mmlearn/heads/unimodal.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/models/weight_files.h"
#include "mmlearn/text/learn_tokenizer.h"
#include "mmlearn/vision/image_processor.h"

namespace mmlearn {
namespace fs = std::filesystem;
using data::MultimodalExample;
using nlohmann::json;

namespace {

class ClassifierTask : public TrainTask {
 public:
  ClassifierTask(const TrainOptions& o, const fs::path& resume_from, data::Manifest train)
      : dropout_(o.modality_dropout.value()), unimodal_weight_(o.unimodal_loss.value()) {
    const fs::path train_path = train.path;
    FusionClassifierConfig config;
    if (!resume_from.empty()) {
      bundle_ = load_fusion_classifier(resume_from);
      config = bundle_.model->config;
    } else {
      config.modalities = o.modalities;
      config.dim = o.dim.value();
      try {
        config.fusion.method = canonical_fusion_method(o.fusion.value());
      } catch (const Error& e) {
        throw UsageError(str_cat("--fusion: ", e.what()));
      }
      const auto& known = classifier_modalities();
      for (const auto& m : config.modalities)
        if (std::find(known.begin(), known.end(), m) == known.end())
          throw UsageError(
              str_cat("--modalities: unknown modality \"", m, "\" (choose from ", join(known), ")"));
    }
    log_info("reading ", train_path.string());
    data::MultimodalOptions read{.modalities = config.modalities,
                                 .labels = config.labels,
                                 .label_field = o.label_field.value(),
                                 .image_size = config.image.image_size,
                                 .audio_window_samples = clap_window_samples(config.audio)};
    std::optional<text::BpeTokenizer> tokenizer;  // learned from the training text (a new run reading text)
    if (resume_from.empty() && reads_modality(config, "text"))
      tokenizer = text::learn_tokenizer(train, o.vocab_size.value());
    train_ = data::load_multimodal(std::move(train), read);
    if (resume_from.empty()) {
      config.labels = train_.labels;
      check(config.labels.size() >= 2, train_path.string(), ": the \"", o.label_field.value(),
            "\" field takes fewer than two values; nothing to classify");
      if (tokenizer) {
        bundle_.tokenizer = std::move(tokenizer);
        config.text.vocab_size = bundle_.tokenizer->vocab_size();
        config.text.eot_token_id = bundle_.tokenizer->eot_id();
      }
      bundle_.model = FusionClassifier(config);
    }
    if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl")) {
      read.labels = config.labels;
      test_ = data::load_multimodal(o.data / "test.jsonl", read);
      if (o.eval_samples && static_cast<int64_t>(test_.examples.size()) > *o.eval_samples)
        test_.examples.resize(static_cast<size_t>(*o.eval_samples));
    }
    if (unimodal_weight_ > 0 && config.modalities.size() > 1)
      unimodal_ = UnimodalHeads(config.modalities, config.dim, static_cast<int64_t>(config.labels.size()));
    trained_ = WithHead(bundle_.model.ptr(), "unimodal", unimodal_ ? unimodal_.ptr() : nullptr);
  }

  torch::nn::Module& trained() override { return *trained_; }
  torch::nn::Module& model() override { return *bundle_.model; }
  int64_t train_size() const override { return train_.size(); }
  data::SkipLog skipped() const override { return train_.skip_log(); }

  std::any prepare(const std::vector<int64_t>& indices) const override {
    const std::vector<MultimodalExample> examples = train_.batch(indices);
    std::vector<const MultimodalExample*> pointers;
    std::vector<int64_t> labels;
    for (const auto& e : examples) {
      pointers.push_back(&e);
      labels.push_back(e.label);
    }
    return std::make_pair(make_classifier_batch(bundle_, pointers), torch::tensor(labels));
  }
  StepLoss loss(std::any& prepared, const StepContext& step) override {
    auto& [batch, labels] = std::any_cast<std::pair<ClassifierBatch, torch::Tensor>&>(prepared);
    drop_modalities(batch, dropout_, step.generator, step.offset, step.group);  // drawn on the CPU
    for (auto* t : {&batch.pixels, &batch.ids, &batch.mel, &batch.samples})
      if (t->defined()) *t = step.place(*t);
    for (auto& [modality, present] : batch.present) present = step.place(present);
    const auto target = step.place(labels);
    AutocastGuard autocast(step.precision);
    const auto out = bundle_.model->forward(batch);
    auto loss = torch::nn::functional::cross_entropy(full_precision(out.logits), target);
    if (!unimodal_) return {loss, {}};
    auto auxiliary = unimodal_->loss(
        out.encoded, target,
        [&](const torch::Tensor& sum, const torch::Tensor& count) { return step.group_mean(sum, count); });
    return {loss + unimodal_weight_ * auxiliary, {{"unimodal", auxiliary.detach()}}};
  }

  json evaluate() override {
    if (test_.examples.empty()) return nullptr;
    bundle_.model->eval();
    return evaluate_fusion_classifier(bundle_, test_);
  }
  std::string summarize(const json& m) const override {
    return str_cat("accuracy ", m["accuracy"].get<double>(), ", macro-F1 ", m["macro_f1"].get<double>());
  }
  void save_model(const fs::path& dir) override { save_fusion_classifier(dir, bundle_); }

 private:
  double dropout_, unimodal_weight_;
  FusionClassifierBundle bundle_;
  UnimodalHeads unimodal_{nullptr};
  WithHead trained_{nullptr};
  data::MultimodalDataset train_, test_;
};

class ClassifierModel : public Model {
 public:
  ClassifierModel(const ModelFamily& family, FusionClassifierBundle bundle)
      : Model(family), bundle_(std::move(bundle)) {}

  std::set<std::string> eval_flags() const override { return {"limit", "strict", "without"}; }
  json evaluate(const EvalRequest& r) override {
    const auto& modalities = bundle_.model->config.modalities;
    for (const auto& m : r.without)
      if (std::find(modalities.begin(), modalities.end(), m) == modalities.end())
        throw UsageError(
            str_cat("--without ", m, ": the model does not read ", m, " (it reads ", join(modalities), ")"));
    const auto manifest = data::find_manifest(r.data, "test");
    auto ds = load_classifier_data(bundle_, manifest);
    if (r.limit > 0 && static_cast<int64_t>(ds.examples.size()) > r.limit)
      ds.examples.resize(static_cast<size_t>(r.limit));
    check(r.strict ? ds.skipped == 0 : !ds.examples.empty(), manifest.string(),
          r.strict ? ": a record could not be read (see above)" : ": no usable records");
    json metrics = evaluate_fusion_classifier(bundle_, ds, {r.without.begin(), r.without.end()});
    metrics["records"] = ds.examples.size();
    metrics["skipped_records"] = ds.skipped;
    return metrics;
  }
  std::string format_metrics(const json& m) const override {
    char line[200];
    std::snprintf(line, sizeof line, "records: %lld (%lld skipped)\naccuracy %5.1f%%  macro-F1 %5.1f%%\n",
                  (long long)m["records"].get<int64_t>(), (long long)m["skipped_records"].get<int64_t>(),
                  100 * m["accuracy"].get<double>(), 100 * m["macro_f1"].get<double>());
    std::string out = line;
    for (const auto& [label, c] : m["per_class"].items()) {
      std::snprintf(line, sizeof line, "  %-12s precision %5.1f%%  recall %5.1f%%  F1 %5.1f%%  (%lld)\n",
                    label.c_str(), 100 * c["precision"].get<double>(), 100 * c["recall"].get<double>(),
                    100 * c["f1"].get<double>(), (long long)c["support"].get<int64_t>());
      out += line;
    }
    return out;
  }

  json predict(const PredictRequest& r) override {
    const auto& c = bundle_.model->config;
    auto reads = [&](const char* m) {
      if (!reads_modality(c, m))
        throw UsageError(
            str_cat("--", m, ": the model was not trained with ", m, " (it reads ", join(c.modalities), ")"));
    };
    MultimodalExample example;
    if (!r.image.empty()) {
      reads("image");
      example.pixels = load_image_tensor(r.image, c.image.image_size);
    }
    if (r.text) {
      reads("text");
      example.text = *r.text;
    }
    if (!r.audio.empty()) {
      reads("audio");
      example.audio = data::read_audio_clip(r.audio, clap_window_samples(c.audio));
    }
    if (!example.pixels.defined() && !example.text && !example.audio)
      throw UsageError(str_cat("nothing to classify: give at least one of --", join(c.modalities, ", --")));
    json result = predict_with_ablation(bundle_, example);
    result["modalities"] = c.modalities;
    return result;
  }

 protected:
  void* bundle_of(const std::type_info& type) override {
    return type == typeid(FusionClassifierBundle) ? &bundle_ : nullptr;
  }

 private:
  FusionClassifierBundle bundle_;
};

}  // namespace

ModelFamily fusion_classifier_family() {
  ModelFamily f;
  f.model_type = "fusion_classifier";
  f.task = "classify";
  f.summary = "multimodal classifier over image, text and audio with any fusion";
  f.presets = {"fusion-tiny"};
  f.default_preset = "fusion-tiny";
  f.describe = [](const std::string& name) {
    FusionClassifierConfig c;
    c.labels = {"a", "b", "c", "d"};
    int64_t parameters = 0;
    for (const auto& p : FusionClassifier(c)->parameters()) parameters += p.numel();
    return PresetInfo{name, parameters,
                      str_cat("encoders of width ", c.dim, " (image ", c.image.image_size,
                              " px conv stack, text x", c.text.layers, " layers, audio x", c.audio.layers,
                              " layers) + --fusion; counted for image+text, concat, 4 labels"),
                      to_json(c)};
  };
  f.holds = [](const fs::path& path) { return config_model_type(path) == "fusion_classifier"; };
  f.open = [](const fs::path& path, const OpenOptions&) -> std::unique_ptr<Model> {
    return std::make_unique<ClassifierModel>(family_of_type("fusion_classifier"),
                                             load_fusion_classifier(path));
  };
  f.train_flags = {"vocab-size",    "modalities",  "fusion", "modality-dropout",
                   "unimodal-loss", "label-field", "dim"};
  f.train_defaults = {{"batch-size", 64},
                      {"lr", 2e-3},
                      {"weight-decay", 0.01},
                      {"precision", "fp32"},
                      {"vocab-size", 640},  // the 512 byte symbols, 2 specials and the merges
                      {"modalities", {"image", "text"}},
                      {"fusion", "concat"},
                      {"modality-dropout", 0.15},
                      {"unimodal-loss", 0.5},
                      {"label-field", "label"},
                      {"dim", 64},
                      {"epochs", 20}};
  f.make_train_task = [](const TrainOptions& o, const fs::path& resume_from,
                         data::Manifest train) -> std::unique_ptr<TrainTask> {
    return std::make_unique<ClassifierTask>(o, resume_from, std::move(train));
  };
  return f;
}

}  // namespace mmlearn
