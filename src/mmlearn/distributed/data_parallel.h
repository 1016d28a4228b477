// Data-parallel training on PyTorch's own c10d (ProcessGroupGloo on CPU). Every process holds the whole model
// and steps on its share of each global batch; after backward the gradients are averaged across processes, so
// every process applies the same update and the weights stay identical. The averaging is DDP's: gradients are
// packed into buckets, and a bucket's all-reduce starts as soon as backward has produced all of its
// gradients, while backward goes on with the earlier layers.
//
// Processes find each other the way torchrun and SLURM tell them: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT (or SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID), and GLOO_SOCKET_IFNAME for the network
// interface. `mmlearn train --nproc N` sets them for N local workers (distributed/launch.h).
//
//   auto env = mmlearn::ParallelEnvironment::from_environment();   // nullopt: one process
//   mmlearn::DataParallel dp(*env);
//   dp.attach(parameters);                 // once
//   dp.begin_backward(); loss.backward(); dp.finish_backward();   // .grad now holds the mean over processes
#pragma once

#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mmlearn {

struct ParallelEnvironment {
  int rank = 0, world = 1, local_rank = 0, local_world = 1;
  std::string master_addr;
  int master_port = 0;
  std::string interface;  // GLOO_SOCKET_IFNAME; empty: the interface that reaches MASTER_ADDR

  // From the torchrun or SLURM variables; nullopt when they describe a single process. Malformed values
  // are errors that name the variable.
  static std::optional<ParallelEnvironment> from_environment();
};

class DataParallel;

// BatchNorm over the whole batch: in training under data parallelism, the statistics are every process's
// examples' (SyncBatchNorm), so that the run is the one a single process would make; otherwise `bn` itself.
torch::Tensor batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

class DataParallel {
 public:
  // Joins the group (rank 0 serves the rendezvous store at MASTER_ADDR:MASTER_PORT). `timeout` bounds every
  // collective: a peer that stops answering fails the step instead of hanging it; a peer that dies fails it
  // at once.
  explicit DataParallel(const ParallelEnvironment& env,
                        std::chrono::milliseconds timeout = std::chrono::minutes(30));
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  // The group this process trains in, or null: what layers that need the whole batch (batch_norm below)
  // consult.
  static const DataParallel* active();

  // Copies rank 0's tensors into everyone's (the starting weights).
  void broadcast(const std::vector<torch::Tensor>& tensors) const;
  // The sum over processes (no gradient).
  torch::Tensor sum(const torch::Tensor& local) const;
  // Everyone's `local` [n, ...] concatenated in rank order [world * n, ...]. The gradient flows back to each
  // process's own rows from every process's loss, so a loss computed on the gathered features differentiates
  // as if one process held the whole batch (OpenCLIP's gather_with_grad).
  torch::Tensor all_gather_with_grad(const torch::Tensor& local) const;
  // The sum over processes, differentiable: each process's gradient is the sum of everyone's.
  torch::Tensor sum_with_grad(const torch::Tensor& local) const;

  // Gradient averaging for `parameters` (those with requires_grad), in buckets of about `bucket_bytes`.
  void attach(const std::vector<torch::Tensor>& parameters, int64_t bucket_bytes = 25 << 20);
  // Around the backward pass whose gradients are to be averaged (with accumulation: the last micro-batch's;
  // the earlier ones accumulate locally). After finish_backward every process's .grad holds the mean over
  // processes; a parameter that no process gave a gradient keeps none. Returns the seconds spent waiting for
  // the all-reduce after backward ended.
  void begin_backward();
  double finish_backward();

 private:
  struct Group;
  struct Reducer;
  ParallelEnvironment env_;
  std::unique_ptr<Group> group_;
  std::unique_ptr<Reducer> reducer_;
};

}  // namespace mmlearn
