#include "mmlearn/train/whisper_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>

#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/precision.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/wer.h"
#include "mmlearn/models/whisper_decoding.h"
#include "mmlearn/train/schedule.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

struct Clip {
  std::vector<int16_t> samples;  // 16 kHz, cut to one window
  std::string text;
};

// The audio + text records of a manifest, decoded once (as 16-bit samples, to halve the memory); records
// that cannot be read are skipped and counted.
std::vector<Clip> load_clips(const fs::path& manifest_path, int64_t window_samples, int64_t limit,
                             int64_t& skipped) {
  const auto manifest = data::read_manifest(manifest_path);
  std::vector<Clip> clips;
  for (const auto& record : manifest.records) {
    if (limit > 0 && static_cast<int64_t>(clips.size()) >= limit) break;
    try {
      Clip clip;
      clip.text = data::string_field(manifest, record, "text");
      auto samples = audio::load_audio(manifest.resolve(data::string_field(manifest, record, "audio")),
                                       {.max_seconds = 3600});
      if (static_cast<int64_t>(samples.size()) > window_samples)
        samples.resize(static_cast<size_t>(window_samples));
      clip.samples.reserve(samples.size());
      for (float v : samples)
        clip.samples.push_back(static_cast<int16_t>(std::lrint(std::clamp(v, -1.0f, 0.99997f) * 32768.0f)));
      clips.push_back(std::move(clip));
    } catch (const Error& e) {
      if (skipped++ < 5) log_warn("skipping ", manifest.where(record), ": ", e.what());
    }
  }
  return clips;
}

torch::Tensor features_of(const std::vector<const Clip*>& batch, int64_t n_mels, int64_t window_frames) {
  std::vector<torch::Tensor> mels;
  for (const Clip* c : batch) {
    auto audio = torch::empty({static_cast<int64_t>(c->samples.size())}, torch::kFloat);
    float* p = audio.data_ptr<float>();
    for (size_t i = 0; i < c->samples.size(); ++i) p[i] = c->samples[i] / 32768.0f;
    mels.push_back(audio::window_features(audio, n_mels, window_frames));
  }
  return torch::stack(mels);
}

void append_line(const fs::path& path, const json& line) {
  std::ofstream out(path, std::ios::app);
  out << line.dump() << "\n";
}

}  // namespace

json evaluate_transcription(WhisperBundle& w, const fs::path& manifest, int64_t limit, int64_t batch_size) {
  int64_t skipped = 0;
  const int64_t window_frames = 2 * w.model->config.n_audio_ctx;
  const auto clips = load_clips(manifest, window_frames * audio::whisper::hop_length, limit, skipped);
  std::vector<std::string> references, hypotheses;
  WhisperDecodeOptions o{.without_timestamps = true};
  if (w.multilingual) o.language = "en";
  for (size_t start = 0; start < clips.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<const Clip*> batch;
    for (size_t i = start; i < std::min(clips.size(), start + static_cast<size_t>(batch_size)); ++i)
      batch.push_back(&clips[i]);
    auto results = decode_whisper(w, features_of(batch, w.model->config.n_mels, window_frames), o);
    for (size_t i = 0; i < batch.size(); ++i) {
      references.push_back(batch[i]->text);
      hypotheses.push_back(results[i].text);
    }
  }
  const auto wer = word_error_rate(references, hypotheses), cer = char_error_rate(references, hypotheses);
  json examples = json::array();
  for (size_t i = 0; i < std::min<size_t>(5, references.size()); ++i)
    examples.push_back({{"reference", references[i]}, {"hypothesis", hypotheses[i]}});
  return {{"wer", wer.rate()},
          {"cer", cer.rate()},
          {"samples", references.size()},
          {"skipped", skipped},
          {"examples", examples}};
}

WhisperTrainResult train_whisper(const WhisperTrainOptions& o) {
  check(!o.out.empty(), "train: --out is required");
  check(o.batch_size > 0 && o.learning_rate > 0, "train: batch size and learning rate must be positive");
  torch::manual_seed(o.seed);
  WhisperConfig config = whisper_preset(o.preset);
  const int64_t window_frames = 2 * config.n_audio_ctx,
                window_samples = window_frames * audio::whisper::hop_length;
  const Precision precision = parse_precision(o.precision);

  WhisperTrainResult result;
  const fs::path train_path = data::find_manifest(o.data, "train");
  log_info("reading ", train_path.string());
  const auto clips = load_clips(train_path, window_samples, 0, result.skipped_records);
  check(!clips.empty(), train_path.string(), ": no usable audio + text records");
  fs::path test_path;
  if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl")) test_path = o.data / "test.jsonl";

  // Vocabulary from the training text, spelled as decoding writes it (with a leading space).
  std::vector<std::string> texts;
  for (const auto& c : clips) texts.push_back(" " + c.text);
  auto tokenizer =
      text::WhisperTokenizer::from_ranks(text::train_byte_ranks(texts, o.vocab_size), 1, "training text");
  config.n_vocab = tokenizer.vocab_size();
  Whisper model(config);
  model->train();
  WhisperBundle bundle{model, tokenizer, false};

  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  torch::optim::AdamW optimizer(
      {torch::optim::OptimizerParamGroup(
           decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.learning_rate)
                                                                   .weight_decay(o.weight_decay)
                                                                   .betas({0.9, 0.98})
                                                                   .eps(1e-6))),
       torch::optim::OptimizerParamGroup(
           no_decay,
           std::make_unique<torch::optim::AdamWOptions>(
               torch::optim::AdamWOptions(o.learning_rate).weight_decay(0.0).betas({0.9, 0.98}).eps(1e-6)))});

  const auto n = static_cast<int64_t>(clips.size());
  int64_t total_steps =
      o.steps > 0 ? o.steps : (o.minutes > 0 ? 0 : 10 * ((n + o.batch_size - 1) / o.batch_size));
  const fs::path metrics_path = o.out / "metrics.jsonl";
  fs::create_directories(o.out);
  if (fs::exists(metrics_path)) fs::remove(metrics_path);

  torch::Generator generator = at::detail::createCPUGenerator(o.seed);
  torch::Tensor order = torch::randperm(n, generator);
  int64_t cursor = 0;
  auto next_batch = [&] {
    std::vector<const Clip*> batch;
    while (static_cast<int64_t>(batch.size()) < std::min(o.batch_size, n)) {
      if (cursor == n) order = torch::randperm(n, generator), cursor = 0;
      batch.push_back(&clips[static_cast<size_t>(order[cursor++].item<int64_t>())]);
    }
    return batch;
  };
  auto evaluate = [&](int64_t step) -> json {
    if (test_path.empty()) return nullptr;
    model->eval();
    json metrics = evaluate_transcription(bundle, test_path, o.eval_samples);
    model->train();
    append_line(metrics_path, {{"step", step}, {"eval", metrics}});
    log_info("step ", step, ": held-out WER ", metrics["wer"].get<double>(), ", CER ",
             metrics["cer"].get<double>());
    return metrics;
  };

  const auto start = Clock::now();
  std::unique_ptr<Progress> bar;
  double loss_value = 0;
  int64_t step = 0;
  for (; total_steps == 0 || step < total_steps; ++step) {
    if (total_steps == 0 && step == 5) {  // --minutes: time a few steps, then fix the schedule's length
      const double per_step = std::chrono::duration<double>(Clock::now() - start).count() / 5;
      total_steps = std::max<int64_t>(6, static_cast<int64_t>(o.minutes * 60 / per_step));
    }
    if (!bar && total_steps > 0) bar = std::make_unique<Progress>("train", total_steps, "step", step);
    const int64_t warmup =
        o.warmup_steps > 0 ? o.warmup_steps : std::max<int64_t>(1, (total_steps ? total_steps : 200) / 20);
    const double lr = cosine_lr(step, std::max<int64_t>(total_steps, 1), warmup, o.learning_rate);
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);

    const auto batch = next_batch();
    auto mel = features_of(batch, config.n_mels, window_frames);
    std::vector<std::vector<int64_t>> sequences;
    size_t longest = 0;
    for (const Clip* c : batch) {
      std::vector<int64_t> ids = {tokenizer.sot, tokenizer.no_timestamps};
      for (int64_t id : tokenizer.encode(" " + c->text)) ids.push_back(id);
      if (static_cast<int64_t>(ids.size()) >= config.n_text_ctx)
        ids.resize(static_cast<size_t>(config.n_text_ctx - 1));
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
    optimizer.zero_grad();
    torch::Tensor loss;
    {
      AutocastGuard autocast(precision);
      auto logits = model->forward(mel, inputs);
      loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, logits.size(-1)}).to(torch::kFloat), targets.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
    }
    loss_value = loss.item<double>();
    check(std::isfinite(loss_value), "training diverged at step ", step, " (loss ", loss_value,
          "); lower --lr or raise --warmup");
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip);
    optimizer.step();

    if (bar) bar->update(step + 1, {{"loss", loss_value}});
    append_line(metrics_path, {{"step", step}, {"loss", loss_value}, {"lr", lr}});
    const int64_t eval_every = o.eval_every > 0 ? o.eval_every : std::max<int64_t>(50, total_steps / 5);
    if (total_steps > 0 && (step + 1) % eval_every == 0 && step + 1 < total_steps) evaluate(step + 1);
  }
  if (bar) bar->finish();
  model->eval();
  result.steps = step;
  result.final_loss = loss_value;
  result.final_eval = evaluate(step);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  save_whisper(o.out, model, tokenizer, false);
  return result;
}

}  // namespace mmlearn
