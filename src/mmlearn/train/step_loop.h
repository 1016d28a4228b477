// The step loop the trainers share: how long the run is (--steps, or --minutes timed over the first five
// steps), the learning rate at each step (warm-up, then cosine decay), the progress bar, when to evaluate,
// and which examples each step sees (EpochBatches).
//
//   StepLoop loop(o.steps, o.minutes, 10 * steps_per_epoch, run_start);
//   for (int64_t step = 0; loop.running(step); ++step) {
//     set_learning_rate(*optimizer, loop.learning_rate(step, o.learning_rate, o.warmup_steps));
//     ...
//     loop.done(step, loss);
//     if (loop.evaluate_after(step, o.eval_every, 20)) evaluate(step + 1);
//   }
//   loop.finish();
#pragma once

#include <torch/optim/adamw.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "mmlearn/core/progress.h"
#include "mmlearn/train/schedule.h"

namespace mmlearn {

class StepLoop {
 public:
  using Clock = std::chrono::steady_clock;

  // steps > 0 fixes the run's length; else minutes > 0 does (counted from run_start, so that setup counts);
  // else default_steps.
  StepLoop(int64_t steps, double minutes, int64_t default_steps, Clock::time_point run_start)
      : total_(steps > 0 ? steps : (minutes > 0 ? 0 : default_steps)),
        minutes_(minutes),
        run_start_(run_start),
        loop_start_(Clock::now()) {}

  // Whether step `step` is to be run; under --minutes, the length is fixed once five steps are timed.
  bool running(int64_t step) {
    if (total_ == 0 && step == 5) {
      const double per_step = seconds(loop_start_, Clock::now()) / 5;
      const double budget = minutes_ * 60 - seconds(run_start_, loop_start_);
      total_ = std::max<int64_t>(6, static_cast<int64_t>(budget / per_step));
    }
    if (total_ > 0 && step >= total_) return false;
    if (!bar_ && total_ > 0) bar_ = std::make_unique<Progress>("train", total_, "step", step);
    return true;
  }

  int64_t total_steps() const { return total_; }  // 0 while --minutes is still timing

  // Warm-up over `warmup` steps (0: 5 % of the run), then cosine decay to zero.
  double learning_rate(int64_t step, double base, int64_t warmup) const {
    const int64_t w = warmup > 0 ? warmup : std::max<int64_t>(1, (total_ ? total_ : 200) / 20);
    return cosine_lr(step, std::max<int64_t>(total_, 1), w, base);
  }

  void done(int64_t step, double loss) {
    if (bar_) bar_->update(step + 1, {{"loss", loss}});
  }

  // Whether to evaluate after `step`: every `every` steps (0: about five times a run, at least `minimum`
  // apart), but not after the last, where the caller evaluates anyway.
  bool evaluate_after(int64_t step, int64_t every, int64_t minimum) const {
    const int64_t e = every > 0 ? every : std::max<int64_t>(minimum, total_ / 5);
    return total_ > 0 && (step + 1) % e == 0 && step + 1 < total_;
  }

  void finish() {
    if (bar_) bar_->finish();
  }

 private:
  static double seconds(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
  }
  int64_t total_;
  double minutes_;
  Clock::time_point run_start_, loop_start_;
  std::unique_ptr<Progress> bar_;
};

// Which examples each step trains on: a fresh permutation of the n examples every epoch, drawn from
// `generator`, cut into batches (an epoch's last incomplete batch is left out). Steps are asked for in order.
class EpochBatches {
 public:
  EpochBatches(int64_t n, int64_t batch_size, torch::Generator& generator)
      : n_(n), batch_size_(batch_size), generator_(generator) {}

  int64_t steps_per_epoch() const { return n_ / batch_size_; }

  std::vector<int64_t> indices(int64_t step) {
    const int64_t position = step % steps_per_epoch();
    if (position == 0) order_ = torch::randperm(n_, generator_);
    const auto slice = order_.slice(0, position * batch_size_, (position + 1) * batch_size_).contiguous();
    return {slice.data_ptr<int64_t>(), slice.data_ptr<int64_t>() + slice.numel()};
  }

 private:
  int64_t n_, batch_size_;
  torch::Generator& generator_;
  torch::Tensor order_;
};

// Sets every parameter group's learning rate (AdamW groups).
inline void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

}  // namespace mmlearn
