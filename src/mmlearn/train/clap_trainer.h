// Contrastive audio–text training (models/clap.h) on a manifest of audio + text records: a tokenizer learned
// from the training text, CLIP's symmetric loss with a learned temperature, AdamW with warm-up and cosine
// decay, and audio↔text retrieval R@K on held-out records as it goes. The audio tower starts from scratch, or
// from a trained speech recognizer's encoder (init_audio_from: a Whisper model of the same encoder size).
//
//   mmlearn::ClapTrainOptions o{.data = "shapes", .out = "run", .minutes = 10};
//   auto result = mmlearn::train_clap(o);
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "mmlearn/data/audio_text_dataset.h"
#include "mmlearn/models/clap.h"

namespace mmlearn {

struct ClapTrainOptions {
  std::string preset = "clap-tiny";
  std::filesystem::path
      data;  // directory with train.jsonl (+ test.jsonl) or a manifest; records: audio, text
  std::filesystem::path out;
  std::filesystem::path init_audio_from;  // a Whisper model whose encoder seeds the audio tower
  int64_t tokenizer_vocab_size = 1024;
  int64_t steps = 0;  // one of steps / minutes; none: 10 epochs
  double minutes = 0;
  int64_t batch_size = 128;
  double learning_rate = 5e-4;
  double weight_decay = 0.1;
  int64_t warmup_steps = 0;  // 0: 5% of the steps
  double grad_clip = 1.0;
  uint64_t seed = 0;
  int64_t eval_every = 0;       // steps; 0: about 5 times a run
  int64_t eval_samples = 1000;  // held-out records retrieved among at each evaluation
};

struct ClapTrainResult {
  int64_t steps = 0;
  double seconds = 0, final_loss = 0;
  int64_t skipped_records = 0;
  nlohmann::json
      final_eval;  // {"retrieval": {"audio_to_text", "text_to_audio", "n"}}, null without test data
};

ClapTrainResult train_clap(const ClapTrainOptions& options);

// L2-normalized embeddings [N, E] of clips and of texts, in batches, without autograd.
torch::Tensor embed_audio_clips(ClapBundle& clap, const std::vector<const data::AudioClip*>& clips);
torch::Tensor embed_clap_texts(ClapBundle& clap, const std::vector<std::string>& texts);

// Audio↔text recall@1/5/10 over the clips (a candidate counts when its text equals the query's own).
nlohmann::json evaluate_clap(ClapBundle& clap, const data::AudioTextDataset& ds);

}  // namespace mmlearn
