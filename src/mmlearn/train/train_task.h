// What a model family gives the one trainer (train/trainer.h): its model and training-only heads, how a batch
// of training examples is prepared (on the loader's threads, ahead of the step) and its loss, held-out
// evaluation and the model directory it saves. The trainer owns
// everything else — run length, schedule, optimizer, precision, accumulation, clipping, cadence, metrics,
// checkpoints and resume — so a flag means the same for every family.
//
//   class ClipTask : public mmlearn::TrainTask { ... };   // models/clip_family.cpp
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <any>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "mmlearn/core/precision.h"
#include "mmlearn/data/streamed_records.h"
#include "mmlearn/distributed/data_parallel.h"

namespace mmlearn {

struct StepLoss {
  torch::Tensor loss;                          // the scalar that is minimised
  std::map<std::string, torch::Tensor> parts;  // logged beside it (e.g. "ctc")
};

// What a loss is computed in. Examples are loaded in micro-batches that every process steps on together:
// a micro-batch of `group` examples, of which this process holds [offset, offset + indices.size()). With one
// process, offset is 0 and group the micro-batch's size. The trainer averages the processes' losses (their
// gradients), so a loss that is a mean over examples is each process's own mean, and one that is a mean over
// something else (tokens, present modalities) uses group_mean.
struct StepContext {
  torch::Generator&
      generator;  // what is random in a step besides the order (modality dropout); restored on resume
  Precision precision;
  int64_t offset = 0, group = 0;
  const DataParallel* parallel = nullptr;  // null: one process
  torch::Device device = torch::kCPU;      // where the model is: a prepared batch moves there in loss()
  int64_t step = 0;                        // the optimizer step this loss is for (0: the first)

  // A prepared tensor where the model computes: on its device, and in double when training in fp64.
  torch::Tensor place(const torch::Tensor& t) const {
    if (precision == Precision::fp64 && t.is_floating_point()) return t.to(device, torch::kDouble);
    return t.to(device);
  }

  // sum / count over the whole micro-batch, from this process's sum and count, as the trainer's average over
  // processes makes it.
  torch::Tensor group_mean(const torch::Tensor& sum, const torch::Tensor& count) const {
    if (!parallel) return sum / count.clamp_min(1.0);
    return sum * static_cast<double>(parallel->world()) / parallel->sum(count).clamp_min(1.0);
  }
};

// A model and a head only training uses (absent: nullptr), as one module for the optimizer: registered as
// "model" and `head_name`.
struct WithHeadImpl : torch::nn::Module {
  WithHeadImpl(std::shared_ptr<torch::nn::Module> model, const std::string& head_name,
               std::shared_ptr<torch::nn::Module> head) {
    register_module("model", std::move(model));
    if (head) register_module(head_name, std::move(head));
  }
};
TORCH_MODULE(WithHead);

class TrainTask {
 public:
  virtual ~TrainTask() = default;

  // What the optimizer updates: the model, and the heads that only training uses.
  virtual torch::nn::Module& trained() = 0;
  // The model alone (what save_model writes); its tensors are a subset of trained()'s.
  virtual torch::nn::Module& model() = 0;
  virtual int64_t train_size() const = 0;  // training examples, indexed 0 .. train_size() - 1
  // Training records that could not be used so far (a streamed set finds them as it goes).
  virtual data::SkipLog skipped() const = 0;

  // Training examples `indices` (this process's share of a micro-batch; see StepContext), decoded and
  // preprocessed into what loss() takes. Called on loader threads while earlier steps train, so it reads
  // nothing that training changes, and depends on nothing but `indices`.
  virtual std::any prepare(const std::vector<int64_t>& indices) const = 0;
  // The loss of a batch that prepare() made.
  virtual StepLoss loss(std::any& batch, const StepContext& step) = 0;
  // After each optimizer update (CLIP clamps its temperature).
  virtual void after_update() {}
  // The part of a run of `total` steps that `step` belongs to, [begin, end), and its peak learning rate: each
  // part warms its learning rate up and decays it on its own, as a run in two parts (a generator's
  // autoencoder, then its UNet from scratch) would be two runs. By default one part, at --lr.
  struct SchedulePart {
    int64_t begin, end;
    double peak_lr;
  };
  virtual SchedulePart schedule_part(int64_t /*step*/, int64_t total, double lr) const {
    return {0, total, lr};
  }
  // Training mode (a frozen tower's BatchNorm keeps its statistics).
  virtual void train_mode() { trained().train(); }
  // Whether a parameter is weight-decayed; by default matrices other than embeddings.
  virtual bool decays(const std::string& name, const torch::Tensor& parameter) const {
    return parameter.dim() >= 2 && name.find("embedding") == std::string::npos;
  }
  // Numbers logged with each step besides the loss (CLIP's temperature).
  virtual nlohmann::json step_metrics() { return nlohmann::json::object(); }

  // Held-out metrics (null without held-out data) and a one-line summary of them for the log.
  virtual nlohmann::json evaluate() = 0;
  virtual std::string summarize(const nlohmann::json& metrics) const = 0;
  // Writes the model directory: what `eval`, `embed` and the other verbs open.
  virtual void save_model(const std::filesystem::path& dir) = 0;
};

}  // namespace mmlearn
