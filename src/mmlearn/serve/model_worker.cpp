#include "mmlearn/serve/model_worker.h"

namespace mmlearn::serve {

ModelWorker::ModelWorker(std::string name, std::unique_ptr<Model> model, WorkerOptions options)
    : name_(std::move(name)), model_(std::move(model)), options_(std::move(options)) {
  thread_ = std::thread([this] { loop(); });
}

ModelWorker::~ModelWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

int64_t ModelWorker::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(queue_.size());
}

std::future<torch::Tensor> ModelWorker::embed(const std::string& modality, std::vector<std::string> inputs) {
  Job job;
  job.modality = modality;
  job.inputs = std::move(inputs);
  auto future = job.done.get_future();
  push(std::move(job));
  return future;
}

void ModelWorker::push(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void ModelWorker::loop() {
  for (;;) {
    std::vector<Job> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
      if (!batch[0].task) {  // every waiting request for the same modality joins, as far as max_batch allows
        auto n = static_cast<int64_t>(batch[0].inputs.size());
        for (auto it = queue_.begin(); it != queue_.end();) {
          const auto more = static_cast<int64_t>(it->inputs.size());
          if (!it->task && it->modality == batch[0].modality && n + more <= options_.max_batch) {
            n += more;
            batch.push_back(std::move(*it));
            it = queue_.erase(it);
          } else {
            ++it;
          }
        }
      }
    }
    if (batch[0].task)
      batch[0].task();
    else
      embed_batch(batch);
  }
}

void ModelWorker::embed_batch(std::vector<Job>& batch) {
  std::vector<std::string> inputs;
  for (const Job& job : batch) inputs.insert(inputs.end(), job.inputs.begin(), job.inputs.end());
  try {
    const torch::Tensor all = model_->embed(batch[0].modality, inputs, Precision::fp32);
    if (options_.on_batch) options_.on_batch(name_, static_cast<int64_t>(inputs.size()));
    int64_t row = 0;
    for (Job& job : batch) {
      const auto n = static_cast<int64_t>(job.inputs.size());
      job.done.set_value(all.narrow(0, row, n).clone());
      row += n;
    }
  } catch (...) {
    if (batch.size() == 1) {
      batch[0].done.set_exception(std::current_exception());
      return;
    }
    // One request's input failed the batch: each runs alone, so that only that request fails.
    for (Job& job : batch) {
      std::vector<Job> alone;
      alone.push_back(std::move(job));
      embed_batch(alone);
    }
  }
}

}  // namespace mmlearn::serve
