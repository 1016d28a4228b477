// What a training run is told: one options struct for every model family. The generic part (run length,
// schedule, optimizer, precision, cadence, checkpoints) reaches every family through the one loop
// (train/trainer.h); the family part (below "family options") is read by the families that name it in their
// registration, and refused by name for the others. Options are also JSON, keyed by their flag names
// ("batch-size", "lr"), which is how a run records them (checkpoint/.../state.json) and how --resume compares
// what it is told now with what the run was started with.
//
//   mmlearn::TrainOptions o{.preset = "clip-tiny", .data = "shapes", .out = "run", .steps = 600};
//   mmlearn::train(o);
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mmlearn {

struct TrainOptions {
  std::string preset;          // empty: the default preset of `task`'s family
  std::string task;            // contrastive, audio-text, speech, classify, composed; empty: the preset's
  std::filesystem::path data;  // a directory with train.jsonl (+ test.jsonl, classes.json) or a manifest
  std::filesystem::path out;   // the run directory: model files, checkpoint/, metrics.jsonl
  bool resume = false;         // continue the run in `out` from its latest checkpoint

  // Run length: at most one of steps / epochs / minutes; none: the family's default epochs.
  int64_t steps = 0;
  double epochs = 0;
  double minutes = 0;
  // Unset: the family's default (its registration says).
  std::optional<int64_t> batch_size;  // examples per optimizer step, over all workers and micro-batches
  std::optional<double> learning_rate, weight_decay;
  int64_t warmup_steps = 0;              // 0: 5 % of the run
  double grad_clip = 1.0;                // global gradient norm; 0: no clipping
  int64_t accumulate = 1;                // micro-batches per step (batch_size / accumulate examples each)
  std::optional<std::string> precision;  // fp32, bf16 (autocast), fp64 or auto
  uint64_t seed = 0;
  int64_t eval_every = 0;  // steps; 0: about five times a run
  std::optional<int64_t> eval_samples;
  int64_t checkpoint_every = 0;  // steps; 0: every 10 minutes and at the end
  int64_t keep_checkpoints = 2;
  int64_t stop_after = 0;  // leave after this many steps of this process, with a checkpoint
  int64_t max_bad = 100;   // training records (or shard samples) that cannot be read before the run stops

  // Family options.
  std::filesystem::path tokenizer;  // a directory with vocab.json + merges.txt; empty: learn one
  std::optional<int64_t> vocab_size;
  std::filesystem::path init_from;        // a pretrained model to fine-tune
  std::filesystem::path init_audio_from;  // a speech recognizer whose encoder seeds the audio tower
  bool freeze_towers = false;
  bool hard_negatives = false;   // clip: NegCLIP's hard negative captions (text/hard_negative.h)
  int64_t max_image_pixels = 0;  // 0: the decoder's default bound
  std::optional<double> ctc_weight;
  std::vector<std::string> modalities;  // empty: the family's default
  std::optional<std::string> fusion;
  std::optional<double> modality_dropout, unimodal_loss;
  std::optional<std::string> label_field;
  std::optional<int64_t> dim;
  std::optional<std::string> connector;  // how a captioner's decoder sees the image (heads/connector.h)
  bool blind = false;                    // a captioner that never sees the image: the language-prior baseline
  // A question answerer also learns each record's caption (its "text", where it has one), with this weight.
  std::optional<double> caption_weight;
  // A generator trains its autoencoder for this many steps, at its own peak learning rate, then its UNet
  // (at --lr).
  std::optional<int64_t> autoencoder_steps;
  std::optional<double> autoencoder_lr;
  // A generator's diffusion: the noise schedule (linear, scaled-linear, cosine), what the UNet predicts
  // (epsilon, v), Min-SNR-γ loss weighting (0: none) and the decay of the UNet's weight average (EMA).
  std::optional<std::string> noise_schedule, prediction;
  std::optional<double> snr_gamma, ema_decay;
  // A generator's text tower learns with its UNet even when it came from --init-from (kept frozen otherwise).
  bool train_text_encoder = false;

  // Threads preparing the coming batches while a step trains (train/batch_loader.h); 0: none, on the
  // training thread; -1: chosen from the cores. Results do not depend on it.
  int loader_threads = -1;
  // Where the model trains: cpu, cuda, cuda:N (core/device.h).
  std::string device = "cpu";

  // Flags given explicitly, by name, even where the value equals the default (the CLI fills it; a library
  // caller may leave it empty: a value that differs from the default counts as given).
  std::set<std::string> given;
};

// The options as JSON keyed by flag name; unset optionals are left out, and so are `out`, `resume`,
// `loader_threads`, `device` and `given`, which say where and how this process runs rather than what the run
// is.
nlohmann::json to_json(const TrainOptions& options);
// Reads back what to_json wrote, over `base` (fields absent from the JSON keep base's values). Unknown keys
// are an error naming them.
TrainOptions train_options_from_json(const nlohmann::json& json, TrainOptions base = {});

// The flags that are set: given explicitly, or different from TrainOptions{}.
std::set<std::string> given_flags(const TrainOptions& options);

// The flags that only some families read.
const std::set<std::string>& family_flags();

// Range checks of every value, before anything is read or allocated: a wrong value is a UsageError naming
// the flag.
void validate(const TrainOptions& options);
// That every one of `workers` data-parallel workers takes the same share of each micro-batch; `workers_flag`
// names them in the error ("--nproc 2", "2 workers").
void validate_workers(const TrainOptions& options, int64_t workers, const std::string& workers_flag);

}  // namespace mmlearn
