#include "mmlearn/train/fusion_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/classification.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/train/clip_trainer.h"
#include "mmlearn/train/metrics_log.h"
#include "mmlearn/train/step_loop.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using data::MultimodalExample;

namespace {

torch::Tensor bool_tensor(const std::vector<int64_t>& values) {
  return torch::tensor(values).to(torch::kBool);
}

// Training-only linear classifiers on each encoder's pooled output (FusionTrainOptions::unimodal_loss).
struct UnimodalHeadsImpl : torch::nn::Module {
  UnimodalHeadsImpl(const std::vector<std::string>& modalities, int64_t dim, int64_t classes) {
    for (const auto& m : modalities) heads.emplace(m, register_module(m, torch::nn::Linear(dim, classes)));
  }
  // The mean over modalities of the cross-entropy over the examples where each is present.
  torch::Tensor loss(const ModalityOutputs& encoded, const torch::Tensor& labels) {
    torch::Tensor total = torch::zeros({});
    for (const auto& [m, out] : encoded) {
      auto present = out.mask.any(1).to(torch::kFloat);
      auto ce = torch::nn::functional::cross_entropy(
          heads.at(m)(out.pooled), labels,
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
      total = total + (ce * present).sum() / present.sum().clamp_min(1.0);
    }
    return total / double(encoded.size());
  }
  std::map<std::string, torch::nn::Linear> heads;
};
TORCH_MODULE(UnimodalHeads);

// What the optimizer updates: the model and, while training, the auxiliary heads.
struct TrainedModulesImpl : torch::nn::Module {
  TrainedModulesImpl(FusionClassifier model, UnimodalHeads heads) {
    register_module("model", model);
    if (heads) register_module("unimodal", heads);
  }
};
TORCH_MODULE(TrainedModules);

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

}  // namespace

void drop_modalities(ClassifierBatch& batch, double p, torch::Generator& generator) {
  if (p <= 0 || batch.present.size() < 2) return;
  std::vector<std::string> names;
  std::vector<torch::Tensor> columns;
  for (const auto& [m, present] : batch.present) {
    names.push_back(m);
    columns.push_back(present);
  }
  auto present = torch::stack(columns, 1);  // [B, M]
  auto kept = present & (torch::rand(present.sizes(), generator) >= p);
  // Where nothing is left, keep one of the example's own modalities, chosen at random.
  auto one = torch::zeros_like(present).scatter_(
      1, (torch::rand(present.sizes(), generator) * present.to(torch::kFloat)).argmax(1, true), true);
  kept = torch::where(kept.any(1, true), kept, one & present);
  for (size_t i = 0; i < names.size(); ++i) batch.present[names[i]] = kept.select(1, int64_t(i));
}

ClassifierBatch make_classifier_batch(const FusionClassifierBundle& bundle,
                                      const std::vector<const MultimodalExample*>& examples,
                                      const std::set<std::string>& hide) {
  const auto& c = bundle.model->config;
  auto wanted = [&](const std::string& m) { return reads_modality(c, m) && !hide.count(m); };
  ClassifierBatch b;
  if (wanted("image")) {
    std::vector<torch::Tensor> pixels;
    std::vector<int64_t> present;
    const auto blank = torch::zeros({3, c.image.image_size, c.image.image_size}, torch::kUInt8);
    for (const auto* ex : examples) {
      pixels.push_back(ex->pixels.defined() ? ex->pixels : blank);
      present.push_back(ex->pixels.defined());
    }
    if (std::count(present.begin(), present.end(), 1)) {
      b.pixels = torch::stack(pixels);
      b.present["image"] = bool_tensor(present);
    }
  }
  if (wanted("text")) {
    std::vector<std::string> texts;
    std::vector<int64_t> present;
    for (const auto* ex : examples) {
      texts.push_back(ex->text.value_or(""));
      present.push_back(ex->text.has_value());
    }
    if (std::count(present.begin(), present.end(), 1)) {
      b.ids = tokenize_batch(*bundle.tokenizer, texts, c.text.context_length);
      b.present["text"] = bool_tensor(present);
    }
  }
  if (wanted("audio")) {
    static const data::AudioClip silence{std::vector<int16_t>(160, 0), ""};
    std::vector<const data::AudioClip*> clips;
    std::vector<int64_t> present, samples;
    for (const auto* ex : examples) {
      clips.push_back(ex->audio ? &*ex->audio : &silence);
      present.push_back(ex->audio.has_value());
      samples.push_back(int64_t(clips.back()->samples.size()));
    }
    if (std::count(present.begin(), present.end(), 1)) {
      b.mel = data::log_mel_batch(clips, c.audio.n_mels, 2 * c.audio.n_ctx);
      b.samples = torch::tensor(samples);
      b.present["audio"] = bool_tensor(present);
    }
  }
  return b;
}

data::MultimodalDataset load_classifier_data(const FusionClassifierBundle& bundle, const fs::path& manifest,
                                             bool require_labels) {
  const auto& c = bundle.model->config;
  return data::load_multimodal(manifest, {.modalities = c.modalities,
                                          .labels = c.labels,
                                          .require_labels = require_labels,
                                          .image_size = c.image.image_size,
                                          .audio_window_samples = clap_window_samples(c.audio)});
}

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

FusionTrainResult train_fusion_classifier(const FusionTrainOptions& o) {
  const auto start = Clock::now();
  check(!o.out.empty(), "train: --out is required");
  check(o.batch_size >= 1, "train: --batch-size must be at least 1");
  check(o.learning_rate > 0, "train: the learning rate must be positive");
  check(o.modality_dropout >= 0 && o.modality_dropout < 1, "train: --modality-dropout must be in [0, 1)");
  check(o.unimodal_loss >= 0, "train: --unimodal-loss must be >= 0");
  check(!fs::exists(o.out / "model.safetensors"), o.out.string(),
        " already holds a model; choose another --out");
  torch::manual_seed(int64_t(o.seed));

  FusionClassifierConfig config = o.model;
  config.modalities = o.modalities;
  config.fusion.method = canonical_fusion_method(o.fusion);
  for (const auto& m : o.modalities)
    check(std::find(classifier_modalities().begin(), classifier_modalities().end(), m) !=
              classifier_modalities().end(),
          "train: unknown modality \"", m, "\" (choose from image, text, audio)");

  FusionTrainResult result;
  const fs::path train_path = data::find_manifest(o.data, "train");
  log_info("reading ", train_path.string());
  data::MultimodalOptions read{.modalities = config.modalities,
                               .labels = {},
                               .label_field = o.label_field,
                               .image_size = config.image.image_size,
                               .audio_window_samples = clap_window_samples(config.audio)};
  const auto train = data::load_multimodal(train_path, read);
  result.skipped_records = train.skipped;
  check(int64_t(train.examples.size()) >= o.batch_size, train_path.string(), ": ", train.examples.size(),
        " usable records, fewer than one batch of ", o.batch_size, " (lower --batch-size or add data)");
  config.labels = train.labels;
  check(config.labels.size() >= 2, train_path.string(), ": the \"", o.label_field,
        "\" field takes fewer than two values; nothing to classify");

  FusionClassifierBundle bundle;
  if (reads_modality(config, "text")) {
    bundle.tokenizer = learn_tokenizer(train_path, o.vocab_size);
    config.text.vocab_size = bundle.tokenizer->vocab_size();
    config.text.eot_token_id = bundle.tokenizer->eot_id();
  }
  bundle.model = FusionClassifier(config);
  FusionClassifier& model = bundle.model;
  for (const auto& p : model->parameters()) result.parameters += p.numel();

  data::MultimodalDataset test;
  if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl")) {
    read.labels = config.labels;
    test = data::load_multimodal(o.data / "test.jsonl", read);
  }
  UnimodalHeads unimodal{nullptr};
  if (o.unimodal_loss > 0 && config.modalities.size() > 1)
    unimodal = UnimodalHeads(config.modalities, config.dim, int64_t(config.labels.size()));
  TrainedModules trained(model, unimodal);
  trained->train();
  auto optimizer = make_contrastive_optimizer(*trained, o.learning_rate, o.weight_decay);

  fs::create_directories(o.out);
  const fs::path metrics_path = o.out / "metrics.jsonl";
  if (fs::exists(metrics_path)) fs::remove(metrics_path);

  auto evaluate = [&](int64_t step) -> json {
    if (test.examples.empty()) return nullptr;
    model->eval();
    json metrics = evaluate_fusion_classifier(bundle, test);
    model->train();
    append_metrics(
        metrics_path,
        {{"step", step}, {"eval", {{"accuracy", metrics["accuracy"]}, {"macro_f1", metrics["macro_f1"]}}}});
    log_info("step ", step, ": held-out accuracy ", metrics["accuracy"].get<double>(), ", macro-F1 ",
             metrics["macro_f1"].get<double>());
    return metrics;
  };

  torch::Generator generator = at::detail::createCPUGenerator(o.seed);
  EpochBatches batches(int64_t(train.examples.size()), o.batch_size, generator);
  double loss_value = 0;
  int64_t step = 0;
  StepLoop loop(o.steps, o.minutes, 20 * batches.steps_per_epoch(), start);
  for (; loop.running(step); ++step) {
    std::vector<const MultimodalExample*> examples;
    std::vector<int64_t> labels;
    for (int64_t i : batches.indices(step)) {
      examples.push_back(&train.examples[size_t(i)]);
      labels.push_back(examples.back()->label);
    }
    ClassifierBatch batch = make_classifier_batch(bundle, examples);
    drop_modalities(batch, o.modality_dropout, generator);

    const double lr = loop.learning_rate(step, o.learning_rate, o.warmup_steps);
    set_learning_rate(*optimizer, lr);
    const auto target = torch::tensor(labels);
    const auto out = model->forward(batch);
    auto loss = torch::nn::functional::cross_entropy(out.logits, target);
    if (unimodal) loss = loss + o.unimodal_loss * unimodal->loss(out.encoded, target);
    optimizer->zero_grad();
    loss.backward();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(trained->parameters(), o.grad_clip);
    optimizer->step();
    loss_value = loss.item<double>();
    check(std::isfinite(loss_value), "training diverged at step ", step, " (loss ", loss_value,
          "); lower --lr or raise --warmup");

    loop.done(step, loss_value);
    append_metrics(metrics_path,
                   {{"step", step}, {"loss", loss_value}, {"lr", lr}, {"grad_norm", grad_norm}});
    if (loop.evaluate_after(step, o.eval_every, 20)) evaluate(step + 1);
  }
  loop.finish();
  model->eval();
  result.steps = step;
  result.final_loss = loss_value;
  result.final_eval = evaluate(step);
  save_fusion_classifier(o.out, bundle);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace mmlearn
