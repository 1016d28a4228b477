// One thread owns each served model (llama-server's design): HTTP threads queue requests, and the worker
// takes every waiting embedding request of the same modality as one batch, so that concurrent clients share
// a forward pass instead of taking turns. Other work (a transcription, a composed query) runs on the same
// thread between batches: a model is never used by two threads at once.
//
//   mmlearn::serve::ModelWorker w("clip", mmlearn::open_model("run"), {.max_batch = 64});
//   torch::Tensor e = w.embed("text", {"a red circle"}).get();          // [1, E]
//   auto t = w.run([](mmlearn::Model& m) { return m.embeds(); }).get();
#pragma once

#include <torch/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mmlearn/models/registry.h"

namespace mmlearn::serve {

struct WorkerOptions {
  int64_t max_batch = 64;  // inputs embedded together at most
  // Called on the worker thread with each batch's number of inputs (metrics).
  std::function<void(const std::string& model, int64_t inputs)> on_batch;
};

class ModelWorker {
 public:
  ModelWorker(std::string name, std::unique_ptr<Model> model, WorkerOptions options);
  ~ModelWorker();  // finishes what is queued, then joins
  ModelWorker(const ModelWorker&) = delete;
  ModelWorker& operator=(const ModelWorker&) = delete;

  const std::string& name() const { return name_; }
  // What does not run the model (its family, what it embeds) may be read from any thread.
  const Model& model() const { return *model_; }
  int64_t queued() const;

  // Embeddings [inputs.size(), E] of files (image, audio) or strings (text), as Model::embed makes them.
  std::future<torch::Tensor> embed(const std::string& modality, std::vector<std::string> inputs);
  // fn(model) on the worker thread.
  template <class F>
  auto run(F fn) -> std::future<decltype(fn(std::declval<Model&>()))> {
    using R = decltype(fn(std::declval<Model&>()));
    auto task = std::make_shared<std::packaged_task<R()>>([this, fn = std::move(fn)] { return fn(*model_); });
    auto future = task->get_future();
    Job job;
    job.task = [task] { (*task)(); };
    push(std::move(job));
    return future;
  }

 private:
  struct Job {
    std::string modality;
    std::vector<std::string> inputs;
    std::promise<torch::Tensor> done;
    std::function<void()> task;  // set: not an embedding
  };
  void push(Job job);
  void loop();
  void embed_batch(std::vector<Job>& batch);

  std::string name_;
  std::unique_ptr<Model> model_;
  WorkerOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mmlearn::serve
