#include "mmlearn/train/whisper_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/precision.h"
#include "mmlearn/data/audio_text_dataset.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/wer.h"
#include "mmlearn/models/whisper_decoding.h"
#include "mmlearn/train/metrics_log.h"
#include "mmlearn/train/step_loop.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

using Clock = std::chrono::steady_clock;
using data::AudioClip;

json evaluate_transcription(WhisperBundle& w, const fs::path& manifest, int64_t limit, int64_t batch_size) {
  const int64_t window_frames = 2 * w.model->config.n_audio_ctx;
  const auto ds = data::load_audio_text(manifest, window_frames * audio::whisper::hop_length, limit);
  const auto& clips = ds.clips;
  std::vector<std::string> references, hypotheses;
  WhisperDecodeOptions o{.without_timestamps = true};
  if (w.multilingual) o.language = "en";
  for (size_t start = 0; start < clips.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<const AudioClip*> batch;
    for (size_t i = start; i < std::min(clips.size(), start + static_cast<size_t>(batch_size)); ++i)
      batch.push_back(&clips[i]);
    auto results = decode_whisper(w, data::log_mel_batch(batch, w.model->config.n_mels, window_frames), o);
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
          {"skipped", ds.skipped},
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
  const auto train = data::load_audio_text(train_path, window_samples);
  const auto& clips = train.clips;
  result.skipped_records = train.skipped;
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
  // CTC over the text tokens, with <|endoftext|>'s id as the blank: classes 0 .. eot.
  torch::nn::Linear ctc_head(config.n_audio_state, tokenizer.eot + 1);
  WhisperBundle bundle{model, tokenizer, false, /*suppress_non_speech=*/false, /*timestamps=*/false};

  std::vector<torch::Tensor> decay, no_decay;
  auto parameters = model->parameters();
  if (o.ctc_weight > 0)
    for (auto& p : ctc_head->parameters()) parameters.push_back(p);
  for (auto& p : parameters) (p.dim() >= 2 ? decay : no_decay).push_back(p);
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
  const fs::path metrics_path = o.out / "metrics.jsonl";
  fs::create_directories(o.out);
  if (fs::exists(metrics_path)) fs::remove(metrics_path);

  torch::Generator generator = at::detail::createCPUGenerator(o.seed);
  torch::Tensor order = torch::randperm(n, generator);
  int64_t cursor = 0;
  auto next_batch = [&] {
    std::vector<const AudioClip*> batch;
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
    append_metrics(metrics_path, {{"step", step}, {"eval", metrics}});
    log_info("step ", step, ": held-out WER ", metrics["wer"].get<double>(), ", CER ",
             metrics["cer"].get<double>());
    return metrics;
  };

  const auto start = Clock::now();
  double loss_value = 0;
  int64_t step = 0, bad_steps_in_a_row = 0;
  StepLoop loop(o.steps, o.minutes, 10 * ((n + o.batch_size - 1) / o.batch_size), start);
  for (; loop.running(step); ++step) {
    const double lr = loop.learning_rate(step, o.learning_rate, o.warmup_steps);
    set_learning_rate(optimizer, lr);

    const auto batch = next_batch();
    auto mel = data::log_mel_batch(batch, config.n_mels, window_frames);
    std::vector<std::vector<int64_t>> sequences;
    std::vector<int64_t> ctc_targets, ctc_lengths;
    size_t longest = 0;
    for (const AudioClip* c : batch) {
      std::vector<int64_t> ids = {tokenizer.sot, tokenizer.no_timestamps};
      for (int64_t id : tokenizer.encode(" " + c->text)) ids.push_back(id);
      if (static_cast<int64_t>(ids.size()) >= config.n_text_ctx)
        ids.resize(static_cast<size_t>(config.n_text_ctx - 1));
      ctc_targets.insert(ctc_targets.end(), ids.begin() + 2, ids.end());
      ctc_lengths.push_back(static_cast<int64_t>(ids.size()) - 2);
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
    torch::Tensor loss, ce, ctc;
    {
      AutocastGuard autocast(precision);
      auto audio = model->encoder->forward(mel);
      auto logits = model->decoder->forward(inputs, audio);
      ce = torch::nn::functional::cross_entropy(
          logits.reshape({-1, logits.size(-1)}).to(torch::kFloat), targets.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
      loss = ce;
      if (o.ctc_weight > 0) {
        auto log_probs =
            ctc_head->forward(audio).to(torch::kFloat).log_softmax(-1).transpose(0, 1);  // [T, B, C]
        ctc = torch::nn::functional::ctc_loss(
            log_probs, torch::tensor(ctc_targets),
            torch::full({static_cast<int64_t>(batch.size())}, audio.size(1), torch::kLong),
            torch::tensor(ctc_lengths),
            torch::nn::functional::CTCLossFuncOptions().blank(tokenizer.eot).zero_infinity(true));
        loss = (1 - o.ctc_weight) * ce + o.ctc_weight * ctc;
      }
    }
    loss_value = loss.item<double>();
    check(std::isfinite(loss_value), "training diverged at step ", step, " (loss ", loss_value,
          "); lower --lr or raise --warmup");
    loss.backward();
    // A non-finite gradient would reach every weight through the clipping (which scales by 1 / norm): the
    // step is skipped instead, as mixed-precision loss scaling does, and only a run of them stops training.
    const double grad_norm = torch::nn::utils::clip_grad_norm_(parameters, o.grad_clip);
    if (!std::isfinite(grad_norm)) {
      ++result.skipped_steps;
      log_warn("step ", step, ": non-finite gradient, update skipped");
      check(++bad_steps_in_a_row < 10, "training diverged at step ", step,
            " (10 non-finite gradients in a row); lower --lr or raise --warmup");
      continue;
    }
    bad_steps_in_a_row = 0;
    optimizer.step();

    loop.done(step, loss_value);
    json line{{"step", step}, {"loss", loss_value}, {"lr", lr}, {"ce", ce.item<double>()}};
    if (ctc.defined()) line["ctc"] = ctc.item<double>();
    append_metrics(metrics_path, line);
    if (loop.evaluate_after(step, o.eval_every, 50)) evaluate(step + 1);
  }
  loop.finish();
  model->eval();
  result.steps = step;
  result.final_loss = loss_value;
  result.final_eval = evaluate(step);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  save_whisper(o.out, bundle);
  return result;
}

}  // namespace mmlearn
