// Contrastive image–text training (CLIP) from a manifest to a model directory: AdamW, warm-up + cosine
// schedule, gradient clipping, periodic evaluation and checkpoints, exact resume, metrics to
// RUN/metrics.jsonl. Without a tokenizer it learns one (byte-level BPE) from the training text, so any image
// + text manifest trains.
//
//   mmlearn::ClipTrainOptions o{.data = "shapes", .out = "run", .steps = 600};
//   mmlearn::ClipTrainResult r = mmlearn::train_clip(o);
#pragma once

#include <torch/optim/adamw.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "mmlearn/core/precision.h"
#include "mmlearn/models/clip.h"
#include "mmlearn/text/bpe.h"

namespace mmlearn {

struct ClipTrainOptions {
  std::string preset = "clip-tiny";
  std::filesystem::path data;       // directory with train.jsonl (+ test.jsonl, classes.json) or a manifest
  std::filesystem::path out;        // the run directory: model files, checkpoint/, metrics.jsonl
  std::filesystem::path tokenizer;  // a directory with vocab.json + merges.txt; empty: learn one
  // A pretrained CLIP to fine-tune (any format models/clip_import.h opens): its architecture, tokenizer and
  // weights replace preset and tokenizer. freeze_towers: train only the projections and the temperature.
  std::filesystem::path init_from;
  bool freeze_towers = false;
  int64_t tokenizer_vocab_size = 1024;
  int64_t steps = 0;  // exactly one of steps / epochs / minutes decides the length; none: 10 epochs
  double epochs = 0;
  double minutes = 0;
  int64_t batch_size = 128;
  double learning_rate = 1e-3;
  double weight_decay = 0.1;
  int64_t warmup_steps = 0;  // 0: 5% of the steps
  double grad_clip = 1.0;
  uint64_t seed = 0;
  int64_t checkpoint_every = 0;    // steps; 0: only at the end
  int64_t eval_every = 0;          // steps; 0: about 10 times a run
  int64_t eval_samples = 1000;     // held-out records evaluated during training
  std::string precision = "auto";  // fp32 | bf16 | auto (bf16 autocast where the CPU has native bf16)
  bool resume = false;
  int64_t stop_after =
      0;  // leave after this many steps with a checkpoint (time-sliced jobs); 0: run to the end
  int64_t max_image_pixels = 1'000'000'000;
};

struct ClipTrainResult {
  int64_t steps = 0;
  double seconds = 0;
  double final_loss = 0;
  int64_t skipped_records = 0;
  nlohmann::json final_eval;  // null without held-out data
};

ClipTrainResult train_clip(const ClipTrainOptions& options);

// A byte-level BPE tokenizer learned from the "text" fields of a manifest (with a progress bar).
text::BpeTokenizer learn_tokenizer(const std::filesystem::path& manifest, int64_t vocab_size);

// The pieces of a training step, shared with the benchmark and the audio–text trainer: AdamW with decay on
// matrices only (not on gains, biases, embeddings or the temperature), and one step
// (normalize pixels, both towers, contrastive loss, backward, clip, update, clamp the temperature). Returns
// the loss.
std::unique_ptr<torch::optim::AdamW> make_contrastive_optimizer(torch::nn::Module& model,
                                                                double learning_rate, double weight_decay);
double clip_train_step(Clip& model, torch::optim::Optimizer& optimizer, const torch::Tensor& images_u8,
                       const torch::Tensor& ids, double grad_clip, Precision precision = Precision::fp32);

}  // namespace mmlearn
