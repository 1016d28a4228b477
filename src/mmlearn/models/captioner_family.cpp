// The captioner's rows in the registry: a text decoder over a CLIP image tower (models/captioner.h), one row
// for captions (`train --task caption`) and one for answers to questions (`train --task vqa`). A run starts
// the tower from a CLIP (--init-from: trained here or pretrained; --freeze-towers keeps it) or from the
// preset's with a tokenizer learned from the training text, and trains the connector and the decoder on
// teacher-forced cross-entropy; --connector chooses how the decoder sees the image, --blind trains the
// language-prior baseline, and a question answerer also learns its records' captions (--caption-weight).
// `caption`, `ask` and `eval` open what it saves; `caption`, `ask` and `dump` also open Hugging Face BLIP
// directories (models/blip.h).
#include <functional>
#include <map>
#include <optional>
#include <tuple>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/data/record_media.h"
#include "mmlearn/data/streamed_records.h"
#include "mmlearn/eval/captioner_eval.h"
#include "mmlearn/models/blip.h"
#include "mmlearn/models/captioner.h"
#include "mmlearn/models/clip_import.h"
#include "mmlearn/models/clip_pixels.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/text/learn_tokenizer.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The preset's image tower: CLIP's tiny ResNet (64 px, 4 stages of one block, a 2 x 2 grid of 512-wide
// tokens). Trained from scratch in minutes it learns what the scenes hold far faster than the tiny ViT: 88 %
// of captions grounded after 3 minutes, against 23 %.
constexpr const char* kTowerPreset = "clip-tiny";

// The text a run learns to read and write, which its tokenizer is learned from.
std::vector<std::string> text_fields(const std::string& task, const TrainOptions& o) {
  if (task != "vqa") return {"text"};
  if (o.caption_weight.value() > 0) return {"question", "answer", "text"};
  return {"question", "answer"};
}

CaptionerBundle captioner_to_train(const TrainOptions& o, const std::string& task,
                                   const fs::path& resume_from, const data::Manifest& train) {
  if (!o.init_from.empty() && !o.tokenizer.empty())
    throw UsageError("--tokenizer cannot be combined with --init-from: the CLIP's tokenizer is used");
  if (o.freeze_towers && o.init_from.empty())
    throw UsageError("--freeze-towers needs --init-from (a CLIP whose image tower to keep)");
  if (!resume_from.empty()) return load_captioner(resume_from);
  const CaptionerOptions options{
      .task = task, .blind = o.blind, .connector = parse_connector(o.connector.value())};
  if (!o.init_from.empty()) {
    // A CLIP, or a captioner whose tower and tokenizer carry over (captions first, then questions).
    const fs::path config = o.init_from / "config.json";
    const std::string type = fs::is_directory(o.init_from) && fs::exists(config)
                                 ? string_value(read_json_file(config), "model_type")
                                 : std::string();
    const bool captioner = type == captioner_model_type("caption") || type == captioner_model_type("vqa");
    return make_captioner(captioner ? load_captioner(o.init_from).clip : open_clip(o.init_from), options);
  }
  ClipConfig config = clip_preset(kTowerPreset);
  text::BpeTokenizer tokenizer =
      o.tokenizer.empty() ? text::learn_tokenizer(train, o.vocab_size.value(), text_fields(task, o))
                          : text::BpeTokenizer::load(o.tokenizer);
  config.text.vocab_size = tokenizer.vocab_size();
  config.text.eot_token_id = tokenizer.eot_id();
  return make_captioner({Clip(config), std::move(tokenizer)}, options);
}

// The records a run can use: those of a manifest whose text fields or image file are missing are left out
// up front (and counted against --max-bad); an image that cannot be decoded is found when its batch is made.
data::Manifest usable_records(data::Manifest manifest, const std::string& task) {
  std::vector<data::Record> kept;
  for (auto& record : manifest.records) {
    try {
      captioner_example(task, manifest, record);
      const fs::path image = manifest.media_file(record, "image");
      check(record.shard >= 0 || fs::is_regular_file(image), manifest.where(record),
            ": field \"image\": ", image.string(), " not found");
      kept.push_back(std::move(record));
    } catch (const Error& e) {
      manifest.problems.push_back(e.what());
    }
  }
  manifest.records = std::move(kept);
  return manifest;
}

class CaptionerTask : public TrainTask {
 public:
  CaptionerTask(const TrainOptions& o, const std::string& task, const fs::path& resume_from,
                data::Manifest train)
      : m_(captioner_to_train(o, task, resume_from, train)),
        train_(usable_records(std::move(train), task)),
        freeze_(o.freeze_towers),
        caption_weight_(task == "vqa" ? o.caption_weight.value() : 0.0),
        eval_samples_(o.eval_samples.value()) {
    decode_.max_pixels = o.max_image_pixels > 0 ? o.max_image_pixels : decode_.max_pixels;
    if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl")) test_path_ = o.data / "test.jsonl";
    // The CLIP's text tower writes nothing here; a frozen image tower keeps its weights.
    for (auto& p : m_.clip.model->named_parameters())
      if (freeze_ || !p.key().starts_with("visual.")) p.value().requires_grad_(false);
    trained_ = WithHead(m_.clip.model.ptr(), "captioner", m_.model.ptr());
    const auto& problems = train_.manifest().problems;
    check(train_.size() > 0, train_.manifest().path.string(), ": no usable training record",
          problems.empty() ? std::string() : " (" + problems.front() + ")");
  }

  const std::string& task() const { return m_.model->config.task; }
  torch::nn::Module& trained() override { return *trained_; }
  torch::nn::Module& model() override { return *trained_; }
  int64_t train_size() const override { return train_.size(); }
  data::SkipLog skipped() const override { return train_.skipped().log(); }

  struct Batch {
    torch::Tensor images;  // uint8 [B, 3, S, S]
    std::vector<std::string> prompts, targets;
    std::vector<int64_t> captioned;  // question answerers: the rows whose record has a caption too
    std::vector<std::string> captions;
  };
  std::any prepare(const std::vector<int64_t>& indices) const override {
    const int64_t size = m_.clip.model->config.vision.image_size;
    Batch batch;
    std::vector<torch::Tensor> images;
    for (int64_t i : indices) {
      // (A record that cannot be decoded hands its place to the next: nothing is kept before it decodes.)
      auto [image, text, caption] = train_.decode(i, [&](const data::Record& r) {
        auto example = captioner_example(task(), train_.manifest(), r);  // the cheap check first
        std::optional<std::string> caption;
        if (caption_weight_ > 0 && r.json.contains("text") && r.json["text"].is_string())
          caption = r.json["text"].get<std::string>();
        return std::make_tuple(data::read_record_image(train_.manifest(), r, size, decode_), example,
                               caption);
      });
      if (caption) {
        batch.captioned.push_back(static_cast<int64_t>(images.size()));
        batch.captions.push_back(std::move(*caption));
      }
      images.push_back(image);
      batch.prompts.push_back(std::move(text.prompt));
      batch.targets.push_back(std::move(text.target));
    }
    batch.images = torch::stack(images);
    return batch;
  }

  StepLoss loss(std::any& batch, const StepContext& step) override {
    auto& b = std::any_cast<Batch&>(batch);
    AutocastGuard autocast(step.precision);
    const auto pixels = m_.clip.model->normalize_pixels(step.place(b.images));
    const Conditioning conditioning = condition_on_images(m_, pixels);
    const auto [sum, count] = captioner_loss(m_, conditioning, b.prompts, b.targets);
    auto loss = step.group_mean(sum, count);
    if (caption_weight_ > 0) {
      // The records' captions from the same images (BLIP's captioning loss beside VQA's): every caption names
      // every object, where an answer names one thing about one. Every process takes this branch, so that
      // group_mean's all-reduce pairs up, with or without captions in its micro-batch.
      torch::Tensor caption_sum = torch::zeros({}, sum.options()),
                    caption_count = torch::zeros({}, count.options());
      if (!b.captioned.empty())
        std::tie(caption_sum, caption_count) =
            captioner_loss(m_, conditioning_rows(conditioning, torch::tensor(b.captioned)),
                           std::vector<std::string>(b.captions.size()), b.captions);
      loss = loss + caption_weight_ * step.group_mean(caption_sum, caption_count);
    }
    return {loss, {}};
  }
  void train_mode() override {
    trained_->train();
    if (freeze_) m_.clip.model->eval();  // a frozen ResNet's BatchNorm keeps its statistics
  }

  json evaluate() override {
    if (test_path_.empty()) return nullptr;
    json metrics = evaluate_captioner(m_, test_path_, {.limit = eval_samples_});
    metrics.erase("examples");
    return metrics;
  }
  std::string summarize(const json& m) const override {
    if (task() == "vqa") return str_cat("accuracy ", m["accuracy"].get<double>());
    return str_cat("BLEU-4 ", m["bleu4"].get<double>(), ", CIDEr-D ", m["cider"].get<double>(), ", grounded ",
                   m["grounded_accuracy"].dump());
  }
  void save_model(const fs::path& dir) override { save_captioner(dir, m_); }

 private:
  CaptionerBundle m_;
  data::StreamedRecords train_;
  bool freeze_;
  double caption_weight_;
  int64_t eval_samples_;
  data::DecodeOptions decode_;
  WithHead trained_{nullptr};
  fs::path test_path_;
};

// Pixels [N, ...] of the images Model::describe is given, a prompt each: an image is read by `load` once
// however many questions it is asked.
torch::Tensor pixels_to_describe(const std::vector<fs::path>& images, const std::vector<std::string>& prompts,
                                 const std::function<torch::Tensor(const fs::path&)>& load) {
  check(images.size() == prompts.size(), "describe: ", images.size(), " images but ", prompts.size(),
        " prompts");
  std::map<fs::path, torch::Tensor> read;
  std::vector<torch::Tensor> pixels;
  for (const auto& image : images) {
    auto it = read.find(image);
    if (it == read.end()) it = read.emplace(image, load(image)).first;
    pixels.push_back(it->second);
  }
  return torch::stack(pixels);
}

class CaptionerModel : public Model {
 public:
  CaptionerModel(const ModelFamily& family, CaptionerBundle m) : Model(family), m_(std::move(m)) {}

  std::string writes() const override { return m_.model->config.task; }
  std::vector<std::string> describe(const std::vector<fs::path>& images,
                                    const std::vector<std::string>& prompts,
                                    const GenerationOptions& options) override {
    check_generation_options(options);
    for (const auto& prompt : prompts) {
      if (writes() == "caption" && !prompt.empty())
        throw UsageError(
            "--prompt: this captioner was trained to write whole captions, without a start to "
            "continue (BLIP captioners take one)");
      if (writes() == "vqa" && prompt.find_first_not_of(" \t\n") == std::string::npos)
        throw UsageError("the question is empty: a question answerer needs --question");
    }
    const auto pixels = pixels_to_describe(images, prompts, [&](const fs::path& image) {
      return load_clip_pixels(m_.clip.model->config, image);
    });
    return describe_images(m_, pixels, prompts, options);
  }

  std::set<std::string> eval_flags() const override { return {"limit", "strict"}; }
  json evaluate(const EvalRequest& r) override {
    return evaluate_captioner(m_, data::find_manifest(r.data, "test"),
                              {.limit = r.limit, .strict = r.strict});
  }
  std::string format_metrics(const json& m) const override {
    std::string out =
        str_cat("records: ", m["samples"].get<int64_t>(), " (", m["skipped"].get<int64_t>(), " skipped)\n");
    char line[200];
    auto percent = [](const json& v) {
      char text[16] = "-";
      if (!v.is_null()) std::snprintf(text, sizeof text, "%.1f", 100 * v.get<double>());
      return std::string(text);
    };
    if (writes() == "vqa") {
      std::snprintf(line, sizeof line, "accuracy %5.1f%%  (scenes %s%%, charts %s%%)\n",
                    100 * m["accuracy"].get<double>(), percent(m["scenes"]).c_str(),
                    percent(m["charts"]).c_str());
      out += line;
      for (const auto& [type, accuracy] : m["by_type"].items()) {
        std::snprintf(line, sizeof line, "  %-14s %5.1f%%  (%lld questions)\n", type.c_str(),
                      100 * accuracy.get<double>(), (long long)m["count_by_type"][type].get<int64_t>());
        out += line;
      }
    } else {
      std::snprintf(line, sizeof line, "BLEU-4 %.3f  CIDEr-D %.3f  grounded %s%%\n", m["bleu4"].get<double>(),
                    m["cider"].get<double>(), percent(m["grounded_accuracy"]).c_str());
      out += line;
    }
    for (const auto& e : m["examples"])
      out += str_cat(
          e["prompt"].get<std::string>().empty() ? "" : "  q:   " + e["prompt"].get<std::string>() + "\n",
          "  ref: ", e["reference"].get<std::string>(), "\n  hyp: ", e["hypothesis"].get<std::string>(),
          "\n");
    return out;
  }

 protected:
  void* bundle_of(const std::type_info& type) override {
    return type == typeid(CaptionerBundle) ? &m_ : nullptr;
  }

 private:
  CaptionerBundle m_;
};

// A Hugging Face BLIP directory (models/blip.h): it writes as a captioner of the same task does.
class BlipModel : public Model {
 public:
  BlipModel(const ModelFamily& family, BlipBundle m) : Model(family), m_(std::move(m)) {}

  std::string writes() const override { return m_.model->config.task; }
  std::vector<std::string> describe(const std::vector<fs::path>& images,
                                    const std::vector<std::string>& prompts,
                                    const GenerationOptions& options) override {
    check_generation_options(options);
    const auto pixels = pixels_to_describe(
        images, prompts, [&](const fs::path& image) { return load_blip_pixels(m_, image); });
    return blip_describe(m_, pixels, prompts, options);
  }

 protected:
  void* bundle_of(const std::type_info& type) override { return type == typeid(BlipBundle) ? &m_ : nullptr; }

 private:
  BlipBundle m_;
};

ModelFamily captioner_row(const std::string& task) {
  ModelFamily f;
  f.model_type = captioner_model_type(task);
  f.task = task;
  f.summary = task == "vqa" ? "visual question answerer (text decoder over a CLIP image tower; opens Hugging "
                              "Face BlipForQuestionAnswering)"
                            : "image captioner (text decoder over a CLIP image tower; opens Hugging Face "
                              "BlipForConditionalGeneration)";
  f.default_preset = task == "vqa" ? "vqa-tiny" : "captioner-tiny";
  f.presets = {f.default_preset};
  f.describe = [task](const std::string& name) {
    ClipConfig tower = clip_preset(kTowerPreset);
    const int64_t vocab = tower.text.vocab_size;  // the learned vocabulary's default size
    Clip clip(tower);
    const CaptionerOptions options{.task = task};
    const CaptionerConfig c = captioner_config(clip, vocab, options);
    int64_t parameters = 0;
    for (const auto& p : clip->named_parameters())
      if (p.key().starts_with("visual.")) parameters += p.value().numel();
    for (const auto& p : Captioner(c)->parameters()) parameters += p.numel();
    const auto& v = tower.vision;
    return PresetInfo{
        name, parameters,
        str_cat("ResNet ", v.image_size, " width ", v.width, " blocks ", json(v.resnet_layers).dump(), "; ",
                connector_name(c.connector.kind), " connector; decoder width ", c.decoder.width, " x",
                c.decoder.layers, " layers, vocab ", vocab),
        to_json(c)};
  };
  f.holds = [task](const fs::path& path) {
    if (holds_blip(path, task)) return true;
    if (!fs::is_directory(path) || !fs::exists(path / "config.json")) return false;
    try {
      return string_value(read_json_file(path / "config.json"), "model_type") == captioner_model_type(task);
    } catch (const Error&) {
      return false;
    }
  };
  f.open = [task](const fs::path& path, const OpenOptions&) -> std::unique_ptr<Model> {
    const ModelFamily& family = family_of_type(captioner_model_type(task));
    if (holds_blip(path, task)) return std::make_unique<BlipModel>(family, open_blip(path));
    return std::make_unique<CaptionerModel>(family, load_captioner(path));
  };
  f.train_flags = {"tokenizer", "vocab-size",       "init-from", "freeze-towers",
                   "connector", "max-image-pixels", "blind"};
  if (task == "vqa") f.train_flags.insert("caption-weight");
  f.train_defaults = {
      {"batch-size", 64},   {"lr", 1e-3},          {"weight-decay", 0.05},           {"precision", "auto"},
      {"vocab-size", 1024}, {"eval-samples", 500}, {"connector", "cross-attention"}, {"epochs", 10}};
  if (task == "vqa") f.train_defaults["caption-weight"] = 1.0;
  f.make_train_task = [task](const TrainOptions& o, const fs::path& resume_from,
                             data::Manifest train) -> std::unique_ptr<TrainTask> {
    return std::make_unique<CaptionerTask>(o, task, resume_from, std::move(train));
  };
  return f;
}

}  // namespace

ModelFamily captioner_family() { return captioner_row("caption"); }
ModelFamily vqa_family() { return captioner_row("vqa"); }

}  // namespace mmlearn
