// The audio–text model's row in the registry (models/clap.h): trained with CLIP's loss on audio + text
// records, its audio tower from scratch or from a speech recognizer's encoder; embed and eval open it.
#include <cmath>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/clap_eval.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/models/weight_files.h"
#include "mmlearn/models/whisper_import.h"
#include "mmlearn/text/learn_tokenizer.h"

namespace mmlearn {
namespace fs = std::filesystem;
using data::AudioClip;
using nlohmann::json;

namespace {

// The model a run trains: the checkpoint's when resuming, else the preset with a tokenizer learned from the
// training text and, if asked, a recognizer's encoder as its audio tower.
ClapBundle clap_to_train(const TrainOptions& o, const fs::path& resume_from, const data::Manifest& train) {
  if (!resume_from.empty()) return load_clap(resume_from);
  ClapConfig config = clap_preset(o.preset);
  text::BpeTokenizer tokenizer = text::learn_tokenizer(train, o.vocab_size.value());
  config.text.vocab_size = tokenizer.vocab_size();
  config.text.eot_token_id = tokenizer.eot_id();
  ClapBundle clap{Clap(config), std::move(tokenizer)};
  if (!o.init_audio_from.empty()) {
    load_audio_tower(clap.model, open_whisper(o.init_audio_from).model, o.init_audio_from.string());
    log_info("audio tower initialised from ", o.init_audio_from.string());
  }
  return clap;
}

class ClapTask : public TrainTask {
 public:
  ClapTask(const TrainOptions& o, const fs::path& resume_from, data::Manifest train)
      : clap_(clap_to_train(o, resume_from, train)) {
    const int64_t window = clap_window_samples(clap_.model->config.audio);
    log_info("reading ", train.path.string());
    train_ = data::load_audio_text(std::move(train), window);
    if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl"))
      test_ = data::load_audio_text(o.data / "test.jsonl", window, o.eval_samples.value_or(1000));
  }

  torch::nn::Module& trained() override { return *clap_.model; }
  torch::nn::Module& model() override { return *clap_.model; }
  int64_t train_size() const override { return train_.size(); }
  data::SkipLog skipped() const override { return train_.skip_log(); }

  std::any prepare(const std::vector<int64_t>& indices) const override {
    const std::vector<AudioClip> clips = train_.batch(indices);
    std::vector<const AudioClip*> pointers;
    for (const auto& c : clips) pointers.push_back(&c);
    return make_clap_batch(clap_, pointers);
  }
  StepLoss loss(std::any& batch, const StepContext& step) override {
    check(step.group >= 2,
          "contrastive training needs at least 2 examples a micro-batch (raise --batch-size)");
    const auto& b = std::any_cast<ClapBatch&>(batch);
    torch::Tensor audio, text;
    {
      AutocastGuard autocast(step.precision);
      audio = clap_.model->encode_audio(step.place(b.mel), step.place(b.samples));
      text = clap_.model->encode_text(step.place(b.ids));
    }
    return {clip_loss(audio, text, clap_.model->logit_scale, step.offset, step.parallel), {}};
  }
  void after_update() override {
    torch::NoGradGuard no_grad;  // CLIP clamps the learned temperature at 100
    clap_.model->logit_scale.clamp_(0, std::log(kMaxLogitScale));
  }
  json step_metrics() override { return {{"logit_scale", clap_.model->logit_scale.exp().item<double>()}}; }

  json evaluate() override {
    if (test_.clips.empty()) return nullptr;
    clap_.model->eval();
    return evaluate_clap(clap_, test_);
  }
  std::string summarize(const json& m) const override {
    const auto& r = m["retrieval"];
    return str_cat("text→audio R@1 ", r["text_to_audio"]["R@1"].get<double>(), ", audio→text R@1 ",
                   r["audio_to_text"]["R@1"].get<double>());
  }
  void save_model(const fs::path& dir) override { save_clap(dir, clap_.model, clap_.tokenizer); }

 private:
  ClapBundle clap_;
  data::AudioTextDataset train_, test_;
};

class ClapModel : public Model {
 public:
  ClapModel(const ModelFamily& family, ClapBundle clap) : Model(family), clap_(std::move(clap)) {}

  std::vector<std::string> embeds() const override { return {"audio", "text"}; }
  torch::Tensor embed(const std::string& modality, const std::vector<std::string>& inputs,
                      Precision precision) override {
    if (modality == "text") return embed_clap_texts(clap_, inputs);
    if (modality != "audio") Model::embed(modality, inputs, precision);
    const int64_t window = clap_window_samples(clap_.model->config.audio);
    std::vector<AudioClip> clips;
    for (const auto& path : inputs) clips.push_back(data::read_audio_clip(path, window));
    std::vector<const AudioClip*> batch;
    for (const auto& c : clips) batch.push_back(&c);
    return embed_audio_clips(clap_, batch);
  }

  std::set<std::string> eval_flags() const override { return {"limit", "strict"}; }
  json evaluate(const EvalRequest& r) override {
    const fs::path manifest = data::find_manifest(r.data, "test");
    const auto ds = data::load_audio_text(manifest, clap_window_samples(clap_.model->config.audio), r.limit);
    check(r.strict ? ds.skipped == 0 : !ds.clips.empty(), manifest.string(),
          r.strict ? ": a record could not be read (see above)" : ": no usable audio + text records");
    json metrics = evaluate_clap(clap_, ds);
    metrics["records"] = ds.clips.size();
    metrics["skipped_records"] = ds.skipped;
    return metrics;
  }
  std::string format_metrics(const json& m) const override {
    return str_cat("records: ", m["records"].get<int64_t>(), " (", m["skipped_records"].get<int64_t>(),
                   " skipped)\n", format_retrieval(m["retrieval"], {"audio_to_text", "text_to_audio"}));
  }

 protected:
  void* bundle_of(const std::type_info& type) override {
    return type == typeid(ClapBundle) ? &clap_ : nullptr;
  }

 private:
  ClapBundle clap_;
};

}  // namespace

ModelFamily clap_family() {
  ModelFamily f;
  f.model_type = "clap";
  f.task = "audio-text";
  f.summary = "contrastive audio–text model (CLAP-style)";
  f.presets = clap_preset_names();
  f.default_preset = "clap-tiny";
  f.describe = [](const std::string& name) {
    const ClapConfig c = clap_preset(name);
    int64_t parameters = 0;
    for (const auto& p : Clap(c)->parameters()) parameters += p.numel();
    return PresetInfo{
        name, parameters,
        str_cat(c.audio.n_mels, " mels, ", c.audio.n_ctx, " positions, width ", c.audio.width, " x",
                c.audio.layers, " layers; text width ", c.text.width, " x", c.text.layers, " layers"),
        to_json(c)};
  };
  f.holds = [](const fs::path& path) { return config_model_type(path) == "clap"; };
  f.open = [](const fs::path& path, const OpenOptions&) -> std::unique_ptr<Model> {
    return std::make_unique<ClapModel>(family_of_type("clap"), load_clap(path));
  };
  f.train_flags = {"vocab-size", "init-audio-from"};
  f.train_defaults = {{"batch-size", 128},   {"lr", 5e-4},         {"weight-decay", 0.1},
                      {"precision", "fp32"}, {"vocab-size", 1024}, {"eval-samples", 1000},
                      {"epochs", 10}};
  f.make_train_task = [](const TrainOptions& o, const fs::path& resume_from,
                         data::Manifest train) -> std::unique_ptr<TrainTask> {
    return std::make_unique<ClapTask>(o, resume_from, std::move(train));
  };
  return f;
}

}  // namespace mmlearn
