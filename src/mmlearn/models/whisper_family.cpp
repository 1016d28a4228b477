// Whisper's row in the registry: speech recognizers opened from OpenAI's .pt files, Hugging Face and mmlearn
// directories (transcribe, eval, dump), and trained from scratch on audio + text records: a byte-level
// vocabulary learned from the training text, teacher-forced cross-entropy on
// <|startoftranscript|> <|notimestamps|> text <|endoftext|>, plus CTC on the encoder while training.
// Features are made exactly as transcription makes them, so the directory it writes transcribes files.
#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/precision.h"
#include "mmlearn/core/torch_file.h"
#include "mmlearn/data/audio_text_dataset.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/transcription_eval.h"
#include "mmlearn/heads/ctc.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/models/whisper_import.h"

namespace mmlearn {
namespace fs = std::filesystem;
using data::AudioClip;
using nlohmann::json;

namespace {

class WhisperTask : public TrainTask {
 public:
  WhisperTask(const TrainOptions& o, const fs::path& resume_from, data::Manifest train)
      : ctc_weight_(o.ctc_weight.value()) {
    const fs::path train_path = train.path;
    WhisperConfig config = resume_from.empty() ? whisper_preset(o.preset) : WhisperConfig{};
    if (!resume_from.empty()) {
      bundle_ = open_whisper(resume_from);
      config = bundle_.model->config;
    }
    window_frames_ = 2 * config.n_audio_ctx;
    log_info("reading ", train_path.string());
    train_ = data::load_audio_text(std::move(train), window_frames_ * audio::whisper::hop_length);
    if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl")) test_path_ = o.data / "test.jsonl";
    eval_samples_ = o.eval_samples.value_or(200);
    if (resume_from.empty()) {
      // The vocabulary of the training text, spelled as decoding writes it (with a leading space).
      std::vector<std::string> texts = train_.texts();
      for (auto& t : texts) t.insert(0, " ");
      check(!texts.empty(), train_path.string(), ": no usable audio + text records");
      auto tokenizer = text::WhisperTokenizer::from_ranks(text::train_byte_ranks(texts, o.vocab_size.value()),
                                                          1, "training text");
      config.n_vocab = tokenizer.vocab_size();
      bundle_ = {Whisper(config), std::move(tokenizer), false, /*suppress_non_speech=*/false,
                 /*timestamps=*/false};
    }
    const auto& tokenizer = bundle_.tokenizer;
    // CTC over the text tokens, with <|endoftext|>'s id as the blank: classes 0 .. eot.
    if (ctc_weight_ > 0) ctc_ = CtcHead(config.n_audio_state, tokenizer.eot + 1, tokenizer.eot);
    trained_ = WithHead(bundle_.model.ptr(), "ctc", ctc_ ? ctc_.ptr() : nullptr);
  }

  torch::nn::Module& trained() override { return *trained_; }
  torch::nn::Module& model() override { return *bundle_.model; }
  int64_t train_size() const override { return train_.size(); }
  data::SkipLog skipped() const override { return train_.skip_log(); }
  // Whisper's recipe decays every matrix, its embeddings included.
  bool decays(const std::string&, const torch::Tensor& p) const override { return p.dim() >= 2; }

  // A batch's features, decoder inputs and targets (-100: not predicted), and CTC's targets.
  struct Batch {
    torch::Tensor mel, inputs, targets;
    std::vector<std::vector<int64_t>> ctc_targets;
  };

  std::any prepare(const std::vector<int64_t>& indices) const override {
    const auto& config = bundle_.model->config;
    const auto& tokenizer = bundle_.tokenizer;
    const std::vector<AudioClip> clips = train_.batch(indices);
    std::vector<const AudioClip*> batch;
    for (const auto& c : clips) batch.push_back(&c);
    Batch out;
    out.mel = data::log_mel_batch(batch, config.n_mels, window_frames_);
    std::vector<std::vector<int64_t>> sequences;
    auto& ctc_targets = out.ctc_targets;
    size_t longest = 0;
    for (const AudioClip* c : batch) {
      std::vector<int64_t> ids = {tokenizer.sot, tokenizer.no_timestamps};
      for (int64_t id : tokenizer.encode(" " + c->text)) ids.push_back(id);
      if (static_cast<int64_t>(ids.size()) >= config.n_text_ctx)
        ids.resize(static_cast<size_t>(config.n_text_ctx - 1));
      ctc_targets.emplace_back(ids.begin() + 2, ids.end());
      ids.push_back(tokenizer.eot);
      longest = std::max(longest, ids.size());
      sequences.push_back(std::move(ids));
    }
    auto inputs = torch::full({static_cast<int64_t>(batch.size()), static_cast<int64_t>(longest) - 1},
                              tokenizer.eot, torch::kLong);
    auto targets = torch::full_like(inputs, -100);
    for (size_t b = 0; b < sequences.size(); ++b)
      for (size_t t = 0; t + 1 < sequences[b].size(); ++t) {
        inputs[int64_t(b)][int64_t(t)] = sequences[b][t];
        if (t >= 1) targets[int64_t(b)][int64_t(t)] = sequences[b][t + 1];  // not the <|notimestamps|> prompt
      }
    out.inputs = inputs;
    out.targets = targets;
    return out;
  }

  StepLoss loss(std::any& batch, const StepContext& step) override {
    const auto& b = std::any_cast<Batch&>(batch);
    const auto targets = step.place(b.targets);
    AutocastGuard autocast(step.precision);
    auto audio = bundle_.model->encoder->forward(step.place(b.mel));
    auto logits = bundle_.model->decoder->forward(step.place(b.inputs), audio);
    // The mean over the micro-batch's predicted tokens, however they fall across processes.
    auto ce = step.group_mean(
        torch::nn::functional::cross_entropy(
            full_precision(logits.reshape({-1, logits.size(-1)})), targets.reshape({-1}),
            torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum)),
        (targets >= 0).sum().to(torch::kFloat));
    if (!ctc_) return {ce, {}};
    auto ctc = ctc_->loss(audio, b.ctc_targets);
    return {(1 - ctc_weight_) * ce + ctc_weight_ * ctc, {{"ce", ce.detach()}, {"ctc", ctc.detach()}}};
  }

  json evaluate() override {
    if (test_path_.empty()) return nullptr;
    bundle_.model->eval();
    return evaluate_transcription(bundle_, test_path_, eval_samples_);
  }
  std::string summarize(const json& m) const override {
    return str_cat("WER ", m["wer"].get<double>(), ", CER ", m["cer"].get<double>());
  }
  void save_model(const fs::path& dir) override { save_whisper(dir, bundle_); }

 private:
  double ctc_weight_;
  WhisperBundle bundle_;
  CtcHead ctc_{nullptr};
  WithHead trained_{nullptr};
  int64_t window_frames_ = 0, eval_samples_ = 0;
  data::AudioTextDataset train_;
  fs::path test_path_;
};

class WhisperModel : public Model {
 public:
  WhisperModel(const ModelFamily& family, WhisperBundle whisper)
      : Model(family), whisper_(std::move(whisper)) {}

  std::set<std::string> eval_flags() const override { return {"limit", "strict"}; }
  json evaluate(const EvalRequest& r) override {
    json metrics = evaluate_transcription(whisper_, data::find_manifest(r.data, "test"), r.limit);
    check(!r.strict || metrics["skipped"].get<int64_t>() == 0, r.data.string(),
          ": a record could not be read (see above)");
    return {{"transcription", metrics}};
  }
  std::string format_metrics(const json& all) const override {
    const json& m = all["transcription"];
    char line[160];
    std::snprintf(line, sizeof line, "records: %lld (%lld skipped)\nWER %5.1f%%  CER %5.1f%%\n",
                  (long long)m["samples"].get<int64_t>(), (long long)m["skipped"].get<int64_t>(),
                  100 * m["wer"].get<double>(), 100 * m["cer"].get<double>());
    std::string out = line;
    for (const auto& e : m["examples"])
      out += str_cat("  ref: ", e["reference"].get<std::string>(),
                     "\n  hyp: ", e["hypothesis"].get<std::string>(), "\n");
    return out;
  }

 protected:
  void* bundle_of(const std::type_info& type) override {
    return type == typeid(WhisperBundle) ? &whisper_ : nullptr;
  }

 private:
  WhisperBundle whisper_;
};

bool holds_whisper(const fs::path& path) {
  if (fs::is_regular_file(path)) {
    const std::string ext = path.extension().string();
    if (ext != ".pt" && ext != ".pth" && ext != ".bin") return false;
    try {  // OpenAI's files: {"dims": ..., "model_state_dict": ...}
      return TorchFile(path).root().find("dims") != nullptr;
    } catch (const Error&) {
      return false;
    }
  }
  if (!fs::is_directory(path)) return false;
  if (!fs::exists(path / "config.json")) {
    for (const auto& entry : fs::directory_iterator(path))
      if (entry.path().extension() == ".pt") return true;
    return false;
  }
  try {
    const json config = read_json_file(path / "config.json");
    return config.is_object() && (string_value(config, "architecture") == "whisper" ||
                                  string_value(config, "model_type") == "whisper");
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

ModelFamily whisper_family() {
  ModelFamily f;
  f.model_type = "whisper";
  f.task = "speech";
  f.summary = "speech recognizer (Whisper)";
  f.presets = whisper_preset_names();
  f.default_preset = "whisper-tiny-shapes";
  f.describe = [](const std::string& name) {
    // Sizes by formula: building large-v3 only to count it would allocate 6 GB.
    const WhisperConfig c = whisper_preset(name);
    const int64_t d = c.n_audio_state, t = c.n_text_state;
    const int64_t encoder =
        3 * c.n_mels * d + d + 3 * d * d + d + c.n_audio_layer * (12 * d * d + 12 * d) + 2 * d;
    const int64_t decoder = (c.n_vocab + c.n_text_ctx) * t + c.n_text_layer * (16 * t * t + 17 * t) + 2 * t;
    return PresetInfo{
        name, encoder + decoder,
        str_cat(c.n_mels, " mels, ", c.n_audio_ctx, " positions, width ", c.n_audio_state, " x",
                c.n_audio_layer, " layers; decoder x", c.n_text_layer, " layers, vocab ", c.n_vocab),
        to_json(c)};
  };
  f.holds = holds_whisper;
  f.open = [](const fs::path& path, const OpenOptions& o) -> std::unique_ptr<Model> {
    return std::make_unique<WhisperModel>(family_of_type("whisper"),
                                          open_whisper(path, {.tokenizer = o.tokenizer}));
  };
  f.train_flags = {"vocab-size", "ctc-weight"};
  f.train_defaults = {{"batch-size", 32},    {"lr", 1e-3},        {"weight-decay", 0.01},
                      {"precision", "fp32"}, {"vocab-size", 512}, {"eval-samples", 200},
                      {"ctc-weight", 0.3},   {"epochs", 10}};
  f.make_train_task = [](const TrainOptions& o, const fs::path& resume_from,
                         data::Manifest train) -> std::unique_ptr<TrainTask> {
    return std::make_unique<WhisperTask>(o, resume_from, std::move(train));
  };
  return f;
}

}  // namespace mmlearn
