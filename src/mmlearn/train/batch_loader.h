// The loader: prepares the batches of the coming steps (TrainTask::prepare: decoding, resizing, log-mel
// features, tokens) on threads of its own while the current step trains, so that a step waits on data only
// when decoding is slower than training. What a step gets does not depend on the number of threads.
//
//   BatchLoader loader(task, [&](int64_t step) { return micro_batches_of(step); }, /*threads=*/2);
//   std::vector<std::any> batches = loader.take(step);   // steps are taken in order
#pragma once

#include <torch/utils.h>

#include <any>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "mmlearn/train/train_task.h"

namespace mmlearn {

class BatchLoader {
 public:
  // This process's examples of each micro-batch of a step.
  using Plan = std::function<std::vector<std::vector<int64_t>>(int64_t step)>;

  // threads 0: each batch is prepared when taken, on the caller's thread. Otherwise `ahead` steps are
  // prepared ahead of the one taken.
  BatchLoader(const TrainTask& task, Plan plan, int threads, int64_t ahead = 2)
      : task_(task), plan_(std::move(plan)), ahead_(threads > 0 ? ahead : 0) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~BatchLoader() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  std::vector<std::any> take(int64_t step) {
    if (workers_.empty()) {
      std::vector<std::any> batches;
      for (const auto& indices : plan_(step)) batches.push_back(task_.prepare(indices));
      return batches;
    }
    if (next_ <= step) next_ = step, pending_.clear();  // the first step taken
    for (; next_ <= step + ahead_; ++next_) schedule(next_);
    std::vector<std::any> batches;
    for (auto& f : pending_.at(step)) batches.push_back(f.get());  // rethrows what prepare threw
    pending_.erase(step);
    return batches;
  }

 private:
  struct Job {
    std::vector<int64_t> indices;
    std::promise<std::any> result;
  };

  void schedule(int64_t step) {
    auto& futures = pending_[step];
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& indices : plan_(step)) {
      jobs_.push_back({std::move(indices), {}});
      futures.push_back(jobs_.back().result.get_future());
    }
    wake_.notify_all();
  }

  void work() {
    torch::NoGradGuard no_grad;
    while (true) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      try {
        job.result.set_value(task_.prepare(job.indices));
      } catch (...) {
        job.result.set_exception(std::current_exception());
      }
    }
  }

  const TrainTask& task_;
  Plan plan_;
  int64_t ahead_, next_ = -1;
  std::map<int64_t, std::vector<std::future<std::any>>> pending_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace mmlearn
