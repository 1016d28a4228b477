#include "mmlearn/train/clap_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/models/whisper_import.h"
#include "mmlearn/train/clip_trainer.h"
#include "mmlearn/train/metrics_log.h"
#include "mmlearn/train/step_loop.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using data::AudioClip;

namespace {

struct Batch {
  torch::Tensor mel, samples, ids;
};

Batch make_batch(const ClapBundle& clap, const std::vector<const AudioClip*>& clips) {
  const auto& c = clap.model->config;
  std::vector<int64_t> samples;
  std::vector<std::string> texts;
  for (const AudioClip* clip : clips) {
    samples.push_back(static_cast<int64_t>(clip->samples.size()));
    texts.push_back(clip->text);
  }
  return {data::log_mel_batch(clips, c.audio.n_mels, 2 * c.audio.n_ctx), torch::tensor(samples),
          tokenize_batch(clap.tokenizer, texts, c.text.context_length)};
}

}  // namespace

torch::Tensor embed_audio_clips(ClapBundle& clap, const std::vector<const AudioClip*>& clips) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (size_t start = 0; start < clips.size(); start += 64) {
    const std::vector<const AudioClip*> batch(
        clips.begin() + static_cast<std::ptrdiff_t>(start),
        clips.begin() + static_cast<std::ptrdiff_t>(std::min(clips.size(), start + 64)));
    const Batch b = make_batch(clap, batch);
    out.push_back(clap.model->encode_audio(b.mel, b.samples));
  }
  return torch::cat(out);
}

torch::Tensor embed_clap_texts(ClapBundle& clap, const std::vector<std::string>& texts) {
  torch::NoGradGuard no_grad;
  return clap.model->encode_text(
      tokenize_batch(clap.tokenizer, texts, clap.model->config.text.context_length));
}

json evaluate_clap(ClapBundle& clap, const data::AudioTextDataset& ds) {
  check(!ds.clips.empty(), "audio–text evaluation: no usable records");
  std::vector<const AudioClip*> clips;
  std::vector<std::string> texts;
  for (const auto& c : ds.clips) {
    clips.push_back(&c);
    texts.push_back(c.text);
  }
  return {{"retrieval", retrieval_metrics(embed_audio_clips(clap, clips), embed_clap_texts(clap, texts),
                                          texts, {1, 5, 10}, {"audio_to_text", "text_to_audio"})}};
}

ClapTrainResult train_clap(const ClapTrainOptions& o) {
  const auto start = Clock::now();
  check(!o.out.empty(), "train: --out is required");
  check(o.batch_size >= 2, "train: --batch-size must be at least 2 for contrastive training");
  check(o.learning_rate > 0, "train: the learning rate must be positive");
  check(!fs::exists(o.out / "model.safetensors"), o.out.string(),
        " already holds a model; choose another --out");
  torch::manual_seed(o.seed);
  ClapConfig config = clap_preset(o.preset);
  const int64_t window_samples = clap_window_samples(config.audio);

  ClapTrainResult result;
  const fs::path train_path = data::find_manifest(o.data, "train");
  log_info("reading ", train_path.string());
  const auto train = data::load_audio_text(train_path, window_samples);
  result.skipped_records = train.skipped;
  check(static_cast<int64_t>(train.clips.size()) >= o.batch_size, train_path.string(), ": ",
        train.clips.size(), " usable audio + text records, fewer than one batch of ", o.batch_size,
        " (lower --batch-size or add data)");
  data::AudioTextDataset test;
  if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl"))
    test = data::load_audio_text(o.data / "test.jsonl", window_samples, o.eval_samples);

  auto tokenizer = learn_tokenizer(train_path, o.tokenizer_vocab_size);
  config.text.vocab_size = tokenizer.vocab_size();
  config.text.eot_token_id = tokenizer.eot_id();
  ClapBundle clap{Clap(config), tokenizer};
  Clap& model = clap.model;
  if (!o.init_audio_from.empty()) {
    load_audio_tower(model, open_whisper(o.init_audio_from).model, o.init_audio_from.string());
    log_info("audio tower initialised from ", o.init_audio_from.string());
  }
  model->train();
  auto optimizer = make_contrastive_optimizer(*model, o.learning_rate, o.weight_decay);

  fs::create_directories(o.out);
  const fs::path metrics_path = o.out / "metrics.jsonl";
  if (fs::exists(metrics_path)) fs::remove(metrics_path);

  auto evaluate = [&](int64_t step) -> json {
    if (test.clips.empty()) return nullptr;
    model->eval();
    json metrics = evaluate_clap(clap, test);
    model->train();
    append_metrics(metrics_path, {{"step", step}, {"eval", metrics}});
    const auto& r = metrics["retrieval"];
    log_info("step ", step, ": held-out text→audio R@1 ", r["text_to_audio"]["R@1"].get<double>(),
             ", audio→text R@1 ", r["audio_to_text"]["R@1"].get<double>());
    return metrics;
  };

  torch::Generator generator = at::detail::createCPUGenerator(o.seed);
  EpochBatches batches(static_cast<int64_t>(train.clips.size()), o.batch_size, generator);
  double loss_value = 0;
  int64_t step = 0;
  StepLoop loop(o.steps, o.minutes, 10 * batches.steps_per_epoch(), start);
  for (; loop.running(step); ++step) {
    std::vector<const AudioClip*> clips;
    for (int64_t i : batches.indices(step)) clips.push_back(&train.clips[static_cast<size_t>(i)]);
    const Batch b = make_batch(clap, clips);

    const double lr = loop.learning_rate(step, o.learning_rate, o.warmup_steps);
    set_learning_rate(*optimizer, lr);
    auto loss =
        clip_loss(model->encode_audio(b.mel, b.samples), model->encode_text(b.ids), model->logit_scale);
    optimizer->zero_grad();
    loss.backward();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip);
    optimizer->step();
    {
      torch::NoGradGuard no_grad;  // CLIP clamps the learned temperature at 100
      model->logit_scale.clamp_(0, std::log(kMaxLogitScale));
    }
    loss_value = loss.item<double>();
    check(std::isfinite(loss_value), "training diverged at step ", step, " (loss ", loss_value,
          "); lower --lr or raise --warmup");

    loop.done(step, loss_value);
    append_metrics(metrics_path, {{"step", step},
                                  {"loss", loss_value},
                                  {"lr", lr},
                                  {"grad_norm", grad_norm},
                                  {"logit_scale", model->logit_scale.exp().item<double>()}});
    if (loop.evaluate_after(step, o.eval_every, 20)) evaluate(step + 1);
  }
  loop.finish();
  model->eval();
  result.steps = step;
  result.final_loss = loss_value;
  result.final_eval = evaluate(step);
  save_clap(o.out, model, clap.tokenizer);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace mmlearn
