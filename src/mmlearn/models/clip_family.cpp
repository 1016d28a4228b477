// CLIP's row in the registry: contrastive image–text models, trained from scratch or fine-tuned from any
// checkpoint models/clip_import.h opens, and opened from all of those formats for embed, eval, zero-shot,
// dump and convert.
#include <cmath>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/torch_file.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/clip_import.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/models/weight_files.h"
#include "mmlearn/text/hard_negative.h"
#include "mmlearn/text/learn_tokenizer.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void log_skipped(const data::ImageTextDataset& ds) {
  if (!ds.skipped) return;
  log_warn(ds.skipped, " of ", ds.skipped + ds.size(), " records in ", ds.manifest.path.string(),
           " skipped (bad or missing image or text), e.g.:");
  for (const auto& reason : ds.skip_reasons) log_warn("  ", reason);
}

void keep_first(data::ImageTextDataset& ds, int64_t n) {
  if (n <= 0 || ds.size() <= n) return;
  ds.images = ds.images.slice(0, 0, n);
  ds.ids = ds.ids.slice(0, 0, n);
  ds.texts.resize(static_cast<size_t>(n));
  ds.manifest.records.resize(static_cast<size_t>(n));
}

std::string retrieval_summary(const json& metrics, const char* a, const char* b) {
  const auto& r = metrics["retrieval"];
  return str_cat(b, " R@1 ", r[b]["R@1"].get<double>(), ", ", a, " R@1 ", r[a]["R@1"].get<double>());
}

// The model a run trains: the checkpoint's when resuming, a pretrained one (trained as opened: no second copy
// of its weights), or the preset with a tokenizer given or learned from the training text.
ClipBundle clip_to_train(const TrainOptions& o, const fs::path& resume_from, const data::Manifest& train) {
  if (!o.init_from.empty() && !o.tokenizer.empty())
    throw UsageError(
        "--tokenizer cannot be combined with --init-from: the pretrained model's tokenizer is used");
  if (o.freeze_towers && o.init_from.empty())
    throw UsageError("--freeze-towers needs --init-from (a pretrained model whose towers to keep)");
  if (!resume_from.empty()) return load_clip(resume_from);
  if (!o.init_from.empty()) return open_clip(o.init_from);
  ClipConfig config = clip_preset(o.preset);
  text::BpeTokenizer tokenizer = o.tokenizer.empty() ? text::learn_tokenizer(train, o.vocab_size.value())
                                                     : text::BpeTokenizer::load(o.tokenizer);
  config.text.vocab_size = tokenizer.vocab_size();
  config.text.eot_token_id = tokenizer.eot_id();
  return {Clip(config), std::move(tokenizer)};
}

// A batch: pixels and token ids, and with --hard-negatives the ids of its captions' hard negatives (those
// that have one).
struct ClipBatch {
  torch::Tensor pixels, ids, negatives;
};

class ClipTask : public TrainTask {
 public:
  ClipTask(const TrainOptions& o, const fs::path& resume_from, data::Manifest train)
      : clip_(clip_to_train(o, resume_from, train)), freeze_(o.freeze_towers) {
    const fs::path train_path = train.path;
    const ClipConfig& c = clip_.model->config;
    data::ImageTextOptions load;
    load.image_size = c.vision.image_size;
    load.context_length = c.text.context_length;
    if (o.max_image_pixels > 0) load.decode.max_pixels = o.max_image_pixels;
    // (The trainer logs the records it skips.)
    train_ = data::load_image_text(std::move(train), clip_.tokenizer, load);
    if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl")) {
      test_ = data::load_image_text(o.data / "test.jsonl", clip_.tokenizer, load);
      log_skipped(test_);
      keep_first(test_, o.eval_samples.value_or(1000));
    }
    classes_ = fs::is_directory(o.data) ? o.data / "classes.json" : train_path.parent_path() / "classes.json";
    if (o.hard_negatives) make_hard_negatives(c.text.context_length);
    if (freeze_)  // a linear probe: the towers keep their weights
      for (auto& p : clip_.model->named_parameters()) {
        const std::string& name = p.key();
        const bool head = name == "visual.proj" || name == "text.text_projection" || name == "logit_scale" ||
                          name.starts_with("visual.attnpool.c_proj.");
        if (!head) p.value().requires_grad_(false);
      }
  }

  torch::nn::Module& trained() override { return *clip_.model; }
  torch::nn::Module& model() override { return *clip_.model; }
  int64_t train_size() const override { return train_.size(); }
  data::SkipLog skipped() const override { return train_.skip_log(); }

  std::any prepare(const std::vector<int64_t>& indices) const override {
    auto [pixels, ids] = train_.batch(indices);
    ClipBatch batch{pixels, ids, {}};
    if (negative_of_.empty()) return batch;
    std::vector<int64_t> rows;
    for (const int64_t i : indices)
      if (negative_of_[static_cast<size_t>(i)] >= 0) rows.push_back(negative_of_[static_cast<size_t>(i)]);
    if (!rows.empty()) batch.negatives = negative_ids_.index_select(0, torch::tensor(rows));
    return batch;
  }
  StepLoss loss(std::any& batch, const StepContext& step) override {
    check(step.group >= 2,
          "contrastive training needs at least 2 examples a micro-batch (raise --batch-size)");
    const auto& b = std::any_cast<ClipBatch&>(batch);
    torch::Tensor image_embeds, text_embeds, negative_embeds;
    {
      AutocastGuard autocast(step.precision);
      image_embeds = clip_.model->encode_image(clip_.model->normalize_pixels(step.place(b.pixels)));
      text_embeds = clip_.model->encode_text(step.place(b.ids));
      if (b.negatives.defined()) negative_embeds = clip_.model->encode_text(step.place(b.negatives));
    }
    return {clip_loss(image_embeds, text_embeds, clip_.model->logit_scale, step.offset, step.parallel,
                      negative_embeds),
            {}};
  }
  void after_update() override {
    torch::NoGradGuard no_grad;  // CLIP clamps the learned temperature at 100
    clip_.model->logit_scale.clamp_(0, std::log(kMaxLogitScale));
  }
  void train_mode() override {
    clip_.model->train();
    if (freeze_) {  // BatchNorm keeps its statistics
      clip_.model->text->eval();
      if (clip_.model->resnet) clip_.model->resnet->eval();
    }
  }
  json step_metrics() override { return {{"logit_scale", clip_.model->logit_scale.exp().item<double>()}}; }

  json evaluate() override {
    if (test_.size() == 0) return nullptr;
    return evaluate_clip(clip_.model, clip_.tokenizer, test_, classes_);
  }
  std::string summarize(const json& m) const override {
    return retrieval_summary(m, "image_to_text", "text_to_image");
  }
  void save_model(const fs::path& dir) override { save_clip(dir, clip_.model, clip_.tokenizer); }

 private:
  // Each training caption's hard negative, made once (as NegCLIP makes its negatives before training), with
  // the attribute words of the data's classes.json, where it has one, as the kinds whose words may swap.
  void make_hard_negatives(int64_t context_length) {
    if (train_.streamed)
      throw UsageError(
          "--hard-negatives needs a manifest of records, not a shard set (the captions are read "
          "up front to make the negatives)");
    std::vector<std::vector<std::string>> kinds;
    if (fs::exists(classes_))
      for (auto& [name, words] : read_zero_shot_classes(classes_).attributes) kinds.push_back(words);
    std::vector<std::string> negatives;
    negative_of_.assign(train_.texts.size(), -1);
    for (size_t i = 0; i < train_.texts.size(); ++i)
      if (auto negative = text::hard_negative(train_.texts[i], kinds)) {
        negative_of_[i] = static_cast<int64_t>(negatives.size());
        negatives.push_back(std::move(*negative));
      }
    log_info("--hard-negatives: ", negatives.size(), " of ", train_.texts.size(),
             " training captions have one (a place word turned to its opposite",
             kinds.empty() ? "; no classes.json beside the data, so no attribute swaps)"
                           : ", or two attributes of one kind swapped)");
    if (!negatives.empty()) negative_ids_ = tokenize_batch(clip_.tokenizer, negatives, context_length);
  }

  ClipBundle clip_;
  bool freeze_;
  std::vector<int64_t> negative_of_;  // per training record: its row of negative_ids_, or -1
  torch::Tensor negative_ids_;
  data::ImageTextDataset train_, test_;
  fs::path classes_;
};

class ClipModel : public Model {
 public:
  ClipModel(const ModelFamily& family, ClipBundle clip) : Model(family), clip_(std::move(clip)) {}

  std::vector<std::string> embeds() const override { return {"image", "text"}; }
  torch::Tensor embed(const std::string& modality, const std::vector<std::string>& inputs,
                      Precision precision) override {
    if (modality != "image" && modality != "text") Model::embed(modality, inputs, precision);
    return embed_clip_inputs(clip_, modality, inputs, precision);
  }

  std::set<std::string> eval_flags() const override { return {"classes", "limit", "strict"}; }
  json evaluate(const EvalRequest& r) override {
    const fs::path manifest = data::find_manifest(r.data, "test");
    auto ds = data::load_image_text(manifest, clip_.tokenizer,
                                    {.image_size = clip_.model->config.vision.image_size,
                                     .context_length = clip_.model->config.text.context_length,
                                     .skip_bad_records = !r.strict});
    keep_first(ds, r.limit);
    check(ds.size() > 0, manifest.string(), ": no usable image + text records to evaluate");
    const fs::path classes = r.classes.empty() ? manifest.parent_path() / "classes.json" : r.classes;
    check(r.classes.empty() || fs::exists(classes), "classes file ", classes.string(), " not found");
    json metrics = evaluate_clip(clip_.model, clip_.tokenizer, ds, classes, r.precision);
    metrics["records"] = ds.size();
    metrics["skipped_records"] = ds.skipped;
    return metrics;
  }
  std::string format_metrics(const json& m) const override {
    std::string out =
        str_cat("records: ", m["records"].get<int64_t>(), " (", m["skipped_records"].get<int64_t>(),
                " skipped)\n", format_retrieval(m["retrieval"], {"image_to_text", "text_to_image"}));
    if (m.contains("zero_shot"))
      for (const auto& [attribute, accuracy] : m["zero_shot"].items()) {
        char line[160];
        std::snprintf(line, sizeof line, "zero-shot %-8s %5.1f%%  (%lld images)\n", attribute.c_str(),
                      100 * accuracy.get<double>(), (long long)m["zero_shot_n"][attribute].get<int64_t>());
        out += line;
      }
    return out;
  }

 protected:
  void* bundle_of(const std::type_info& type) override {
    return type == typeid(ClipBundle) ? &clip_ : nullptr;
  }

 private:
  ClipBundle clip_;
};

// Whether a file or directory holds a CLIP checkpoint in a format open_clip reads.
bool holds_clip(const fs::path& path) {
  if (fs::is_regular_file(path)) {
    const std::string ext = path.extension().string();
    if (ext == ".safetensors") return true;
    if (ext != ".pt" && ext != ".bin" && ext != ".pth") return false;
    try {  // OpenAI's Whisper files are torch.save files too: theirs hold "dims"
      return TorchFile(path).root().find("dims") == nullptr;
    } catch (const Error&) {
      return true;  // open_clip reports what is wrong with it
    }
  }
  if (!fs::is_directory(path)) return false;
  if (fs::exists(path / "config.json")) {
    try {
      const json config = read_json_file(path / "config.json");
      // Untyped configs with towers are CLIP's oldest; other typed ones (BLIP's "blip") are not.
      const std::string type = config.is_object() ? string_value(config, "model_type") : "";
      return config.is_object() && (type == "clip" || (type.empty() && (config.contains("text_config") ||
                                                                        config.contains("vision_config"))));
    } catch (const Error&) {
      return false;
    }
  }
  return fs::exists(path / "open_clip_model.safetensors") || fs::exists(path / "open_clip_pytorch_model.bin");
}

}  // namespace

ModelFamily clip_family() {
  ModelFamily f;
  f.model_type = "clip";
  f.task = "contrastive";
  f.summary = "contrastive image–text model (CLIP)";
  f.presets = clip_preset_names();
  f.default_preset = "clip-tiny";
  f.describe = [](const std::string& name) {
    const ClipConfig c = clip_preset(name);
    int64_t parameters = 0;
    for (const auto& p : Clip(c)->parameters()) parameters += p.numel();
    const auto& v = c.vision;
    const std::string vision =
        v.resnet_layers.empty()
            ? str_cat("ViT ", v.image_size, "/", v.patch_size, " width ", v.width, " x", v.layers, " layers")
            : str_cat("ResNet ", v.image_size, " width ", v.width, " blocks ", json(v.resnet_layers).dump());
    return PresetInfo{name, parameters,
                      str_cat(vision, "; text width ", c.text.width, " x", c.text.layers, " layers"),
                      to_json(c)};
  };
  f.holds = holds_clip;
  f.open = [](const fs::path& path, const OpenOptions& o) -> std::unique_ptr<Model> {
    ClipImportOptions options;
    options.tokenizer = o.tokenizer;
    if (!o.activation.empty()) options.activation = parse_activation(o.activation);
    return std::make_unique<ClipModel>(family_of_type("clip"), open_clip(path, options));
  };
  f.train_flags = {"tokenizer",     "vocab-size",       "init-from",
                   "freeze-towers", "max-image-pixels", "hard-negatives"};
  f.train_defaults = {{"batch-size", 128},   {"lr", 1e-3},         {"weight-decay", 0.1},
                      {"precision", "auto"}, {"vocab-size", 1024}, {"eval-samples", 1000},
                      {"epochs", 10}};
  f.make_train_task = [](const TrainOptions& o, const fs::path& resume_from,
                         data::Manifest train) -> std::unique_ptr<TrainTask> {
    return std::make_unique<ClipTask>(o, resume_from, std::move(train));
  };
  return f;
}

}  // namespace mmlearn
