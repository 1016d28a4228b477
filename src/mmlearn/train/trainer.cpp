#include "mmlearn/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/device.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/distributed/data_parallel.h"
#include "mmlearn/eval/report.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/train/batch_loader.h"
#include "mmlearn/train/metrics_log.h"
#include "mmlearn/train/run_checkpoint.h"
#include "mmlearn/train/schedule.h"
#include "mmlearn/train/time_budget.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The family a run trains: by its preset, or by --task with that family's default preset.
const ModelFamily& resolve_family(TrainOptions& o) {
  if (o.preset.empty()) {
    const ModelFamily& f = family_of_task(o.task.empty() ? "contrastive" : o.task);
    o.preset = f.default_preset;
    return f;
  }
  const ModelFamily& f = family_of_preset(o.preset);
  if (!o.task.empty() && o.task != f.task)
    throw UsageError(str_cat("--preset ", o.preset, " is a ", f.task, " model, not --task ", o.task));
  return f;
}

// Options a resumed run takes from the one it continues. What decides the batches and the model must stay
// (refused by name when it differs); the length, the optimizer's hyperparameters and the cadence may change.
TrainOptions resumed_options(const json& stored, const TrainOptions& now,
                             const std::set<std::string>& given) {
  static const std::set<std::string> cadence = {"eval-every", "eval-samples", "checkpoint-every",
                                                "keep-checkpoints", "max-bad"};
  static const std::set<std::string> length = {"steps", "epochs", "minutes"};
  static const std::set<std::string> hyper = {"lr", "weight-decay", "warmup", "grad-clip"};
  json merged = stored;
  const json current = to_json(now);
  std::vector<std::string> refused;
  for (const auto& flag : given) {
    const json value = current.value(flag, json());
    const json before = stored.value(flag, json());
    if (length.count(flag) || flag == "stop-after" || value == before) continue;
    if (cadence.count(flag)) {
      merged[flag] = value;
    } else if (hyper.count(flag)) {
      log_info("resume: --", flag, " ", value.dump(), " from here on (the run had ", before.dump(), ")");
      merged[flag] = value;
    } else {
      refused.push_back(str_cat("--", flag, " ", value.dump(), " (the run has ", before.dump(), ")"));
    }
  }
  if (!refused.empty())
    throw UsageError(str_cat("--resume continues a run as it was started, and these differ: ",
                             join(refused, "; "), ". Leave them out, or start a new run with another --out"));
  if (given.count("steps") || given.count("epochs") || given.count("minutes"))
    for (const auto& flag : length) merged[flag] = current.value(flag, json(0));
  merged["stop-after"] = now.stop_after;  // this process's own
  TrainOptions o = train_options_from_json(merged);
  o.out = now.out;
  o.resume = true;
  return o;
}

// AdamW over two groups: decayed parameters and the others (gains, biases, embeddings, temperatures), with
// CLIP's betas and epsilon.
std::unique_ptr<torch::optim::AdamW> make_optimizer(TrainTask& task, double lr, double weight_decay) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : task.trained().named_parameters()) {
    if (!p.value().requires_grad()) continue;  // frozen
    (task.decays(p.key(), p.value()) ? decay : no_decay).push_back(p.value());
  }
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(lr).betas({0.9, 0.98}).eps(1e-6).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(lr));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

// The generators a run draws from besides the data order: the global one (initialisation, dropout) and the
// step's own (TrainTask::loss).
TensorMap generator_states(torch::Generator& step_generator) {
  at::Generator global = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> a(global.mutex()), b(step_generator.mutex());
  return {{"global", global.get_state()}, {"step", step_generator.get_state()}};
}

void restore_generators(const TensorMap& states, torch::Generator& step_generator, const fs::path& where) {
  check(states.count("global") && states.count("step"), where.string(),
        "/rng.safetensors: expected the generator states \"global\" and \"step\"");
  at::Generator global = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> a(global.mutex()), b(step_generator.mutex());
  global.set_state(states.at("global"));
  step_generator.set_state(states.at("step"));
}

// Keeps only the metric lines up to `step`: a resumed run writes again what came after its checkpoint.
void truncate_metrics(const fs::path& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.value("step", int64_t{0}) <= step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

// The examples of each step: a permutation of the training set per epoch, a function of (seed, epoch) alone,
// so that a resumed run sees the batches the uninterrupted one would.
class BatchOrder {
 public:
  BatchOrder(int64_t n, int64_t batch_size, uint64_t seed) : n_(n), batch_size_(batch_size), seed_(seed) {}
  int64_t steps_per_epoch() const { return n_ / batch_size_; }
  std::vector<int64_t> indices(int64_t step) {
    const int64_t epoch = step / steps_per_epoch(), position = step % steps_per_epoch();
    if (epoch != epoch_) {
      order_ =
          torch::randperm(n_, at::detail::createCPUGenerator(seed_ * 1000003 + static_cast<uint64_t>(epoch)),
                          torch::TensorOptions().dtype(torch::kLong));
      epoch_ = epoch;
    }
    const int64_t* p = order_.data_ptr<int64_t>() + position * batch_size_;
    return {p, p + batch_size_};
  }

 private:
  int64_t n_, batch_size_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  torch::Tensor order_;
};

// What a run is, settled before anything is loaded: its options (the family's defaults for what was left
// unset, or the resumed run's own), its family, and the checkpoint it continues from.
struct RunPlan {
  TrainOptions options;
  const ModelFamily* family = nullptr;
  std::set<std::string> given;
  std::optional<fs::path> checkpoint;
  json state;                                   // the checkpoint's state.json
  std::optional<ParallelEnvironment> parallel;  // data-parallel training: this process's place
  torch::Device device = torch::kCPU;
};

// Moves what training updates to `device`: the trained modules (in place: the optimizer's references stay
// valid) and the optimizer's moments.
void move_training_state(TrainTask& task, torch::optim::AdamW& optimizer, torch::Device device) {
  task.trained().to(device);
  for (auto& [key, state] : optimizer.state()) {
    auto& s = static_cast<torch::optim::AdamWParamState&>(*state);
    s.exp_avg(s.exp_avg().to(device));
    s.exp_avg_sq(s.exp_avg_sq().to(device));
    if (s.max_exp_avg_sq().defined()) s.max_exp_avg_sq(s.max_exp_avg_sq().to(device));
  }
}

// While it lives, what training updates is on the CPU, where evaluation and the files a run writes read it.
class OnCpu {
 public:
  OnCpu(TrainTask& task, torch::optim::AdamW& optimizer, torch::Device device)
      : task_(task), optimizer_(optimizer), device_(device) {
    if (device_.is_cuda()) move_training_state(task_, optimizer_, torch::kCPU);
  }
  ~OnCpu() {
    if (device_.is_cuda()) move_training_state(task_, optimizer_, device_);
  }
  OnCpu(const OnCpu&) = delete;
  OnCpu& operator=(const OnCpu&) = delete;

 private:
  TrainTask& task_;
  torch::optim::AdamW& optimizer_;
  torch::Device device_;
};

// The floating-point parameters and buffers of `module` in `type`, in place (Module::to(dtype) would convert
// BatchNorm's integer step counts too).
void set_floating_type(torch::nn::Module& module, torch::ScalarType type) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.is_floating_point()) p.set_data(p.to(type));
  for (auto& b : module.buffers())
    if (b.is_floating_point()) b.set_data(b.to(type));
}

// While it lives, an fp64 run's modules are in fp32, as evaluation and the model directories a run writes
// expect; the exact fp64 values are kept aside (exact()) and put back after.
class InFp32 {
 public:
  InFp32(torch::nn::Module& module, bool fp64) : module_(module) {
    if (!fp64) return;
    for (const auto& [name, t] : parameter_map(module_)) exact_[name] = t.detach().clone();
    set_floating_type(module_, torch::kFloat);
  }
  ~InFp32() {
    if (exact_.empty()) return;
    set_floating_type(module_, torch::kDouble);
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : parameter_map(module_)) t.copy_(exact_.at(name));
  }
  InFp32(const InFp32&) = delete;
  InFp32& operator=(const InFp32&) = delete;
  const TensorMap& exact() const { return exact_; }  // empty unless fp64

 private:
  torch::nn::Module& module_;
  TensorMap exact_;
};

RunPlan plan_run(const TrainOptions& requested) {
  validate(requested);
  RunPlan plan;
  plan.given = given_flags(requested);
  TrainOptions& o = plan.options;
  o = requested;
  if (!o.data.empty()) o.data = fs::weakly_canonical(fs::absolute(o.data));
  const fs::path checkpoints = o.out / "checkpoint";
  if (o.resume) {
    plan.checkpoint = latest_run_checkpoint(checkpoints);
    check(plan.checkpoint.has_value(), o.out.string(),
          " holds no checkpoint to resume from (expected checkpoint/step-*/state.json)");
    plan.state = read_run_state(*plan.checkpoint);
    o = resumed_options(plan.state["options"], o, plan.given);
  } else {
    check(!fs::exists(checkpoints) && !fs::exists(o.out / "model.safetensors"), o.out.string(),
          " already holds a training run: pass --resume to continue it, or choose another --out");
    check(!o.data.empty(), "--data is required: a directory with train.jsonl, or a manifest");
  }
  const ModelFamily& family = resolve_family(o);
  plan.family = &family;
  for (const auto& flag : plan.given)
    if (family_flags().count(flag) && !family.train_flags.count(flag))
      throw UsageError(str_cat(
          "--", flag, " does not apply to ", o.preset, " (a ", family.model_type, " model); it reads ",
          family.train_flags.empty()
              ? std::string("no family options")
              : "--" + join({family.train_flags.begin(), family.train_flags.end()}, ", --")));
  if (!o.resume) {  // the family's defaults for what was left unset
    json j = to_json(o);
    for (const auto& [key, value] : family.train_defaults.items())
      if (!j.contains(key) && key != "epochs") j[key] = value;
    if (o.steps == 0 && o.epochs == 0 && o.minutes == 0)
      j["epochs"] = family.train_defaults.value("epochs", 10.0);
    o = train_options_from_json(j, o);
    validate(o);
  }
  plan.parallel = ParallelEnvironment::from_environment();
  if (plan.parallel) validate_workers(o, plan.parallel->world, str_cat(plan.parallel->world, " workers"));
  plan.device = parse_device(o.device);
  if (plan.device.is_cuda() && plan.parallel)
    throw UsageError(str_cat("--device ", o.device,
                             " with data-parallel workers: training on several GPUs (NCCL) is not built yet; "
                             "train on one GPU, or data-parallel on CPUs"));
  return plan;
}

}  // namespace

TrainResult train(const TrainOptions& requested) {
  const auto start = Clock::now();
  const RunPlan plan = plan_run(requested);
  const TrainOptions& o = plan.options;
  const ModelFamily& family = *plan.family;
  const std::set<std::string>& given = plan.given;
  const std::optional<fs::path>& checkpoint = plan.checkpoint;
  const json& state = plan.state;
  const fs::path checkpoints = o.out / "checkpoint", metrics_path = o.out / "metrics.jsonl";
  const int64_t batch_size = o.batch_size.value(), micro = batch_size / o.accumulate;
  const torch::Device device = plan.device;
  // auto on a GPU: bf16 (native from Ampere on; older cards emulate it, slowly: ask for fp32 there).
  const Precision precision = device.is_cuda() && o.precision.value_or("fp32") == "auto"
                                  ? Precision::bf16
                                  : parse_precision(o.precision.value_or("fp32"), /*fp64_allowed=*/true);
  const bool fp64 = precision == Precision::fp64;
  // Data-parallel training: each of `world` processes takes `share` examples of every micro-batch; rank 0
  // alone logs, evaluates and writes.
  std::unique_ptr<DataParallel> parallel;
  if (plan.parallel) {
    if (plan.parallel->rank != 0) {
      set_log_level(LogLevel::quiet);
      Progress::set_enabled(false);
    }
    parallel = std::make_unique<DataParallel>(*plan.parallel);
    log_info("data-parallel training on ", parallel->world(), " workers (Gloo), ", micro / parallel->world(),
             " examples each a micro-batch");
  }
  const int world = parallel ? parallel->world() : 1, rank = parallel ? parallel->rank() : 0;
  const bool writes = rank == 0;
  const int64_t share = micro / world;

  torch::manual_seed(o.seed);
  std::unique_ptr<TrainTask> task = family.make_train_task(o, checkpoint ? *checkpoint / "model" : fs::path(),
                                                           data::open_manifest(o.data, "train"));
  check(task->train_size() >= batch_size, "training data: ", task->train_size(),
        " usable examples, fewer than one batch of ", batch_size, " (lower --batch-size or add data)");
  if (fp64) set_floating_type(task->trained(), torch::kDouble);
  auto optimizer = make_optimizer(*task, o.learning_rate.value(), o.weight_decay.value());
  torch::Generator step_generator = at::detail::createCPUGenerator(o.seed + 1);
  BatchOrder order(task->train_size(), batch_size, o.seed);

  TrainResult result;
  result.rank = rank;
  result.model_type = family.model_type;
  result.preset = o.preset;
  // Records that could not be read are skipped (each reported where it was read; a streamed set finds them
  // as its batches are made); too many stop the run.
  size_t reported = 0;
  auto check_skipped = [&](int64_t skipped) {
    result.skipped_records = skipped;
    const std::vector<std::string> reasons = task->skipped().reasons;
    for (size_t i = reported; i < reasons.size(); ++i) log_warn("skipped ", reasons[i]);
    reported = reasons.size();
    if (skipped <= o.max_bad) return;
    std::vector<std::string> listed(reasons.begin(), reasons.begin() + std::min<int64_t>(10, reasons.size()));
    const bool all_listed = static_cast<int64_t>(listed.size()) == skipped;
    throw Error(str_cat(skipped, " training records could not be read, more than --max-bad ", o.max_bad,
                        listed.empty() ? " (the warnings above name them)" : ": " + join(listed, "; "),
                        !listed.empty() && !all_listed ? "; ..." : "",
                        ". Repair or remove them, or raise --max-bad"));
  };
  const int64_t skipped_at_start = task->skipped().count;  // the same on every worker
  check_skipped(skipped_at_start);
  for (const auto& p : task->model().parameters()) result.parameters += p.numel();
  auto length_in_steps = [&] {
    return o.steps > 0    ? o.steps
           : o.epochs > 0 ? static_cast<int64_t>(std::ceil(o.epochs * order.steps_per_epoch()))
                          : 0;  // --minutes: planned once the first steps are timed
  };
  int64_t step = 0, total = length_in_steps(), bad_in_a_row = 0;
  if (checkpoint) {
    step = state["step"].get<int64_t>();
    const bool new_length = given.count("steps") || given.count("epochs") || given.count("minutes");
    if (!new_length) total = state["total_steps"].get<int64_t>();
    check(total == 0 || total > step, "--resume: the run is at step ", step,
          ", and the length asked for ends at ", total, "; ask for more (--steps, --epochs, --minutes)");
    restore_generators(load_run_checkpoint(*checkpoint, *task, *optimizer), step_generator, *checkpoint);
    result.skipped_steps = state.value("skipped_steps", int64_t{0});
    if (writes) truncate_metrics(metrics_path, step);
    log_info("resuming ", o.out.string(), " at step ", step, total ? str_cat(" of ", total) : std::string());
    if (new_length && total != state["total_steps"].get<int64_t>())
      log_info("resume: the run now ends at step ", total, " (it was planned for ",
               state["total_steps"].get<int64_t>(), "); the schedule follows the new length");
  } else if (writes) {
    fs::create_directories(o.out);
    if (fs::exists(metrics_path)) fs::remove(metrics_path);
  }
  TimeBudget budget(o.minutes, start);
  budget.start_at(step);
  if (device.is_cuda()) move_training_state(*task, *optimizer, device);

  const json options_json = to_json(o);
  auto save_checkpoint = [&] {
    if (!writes) return;
    OnCpu on_cpu(*task, *optimizer, device);
    InFp32 in_fp32(task->trained(), fp64);
    save_run_checkpoint(checkpoints, step, *task, *optimizer, generator_states(step_generator),
                        in_fp32.exact(),
                        {{"step", step},
                         {"total_steps", total},
                         {"model_type", family.model_type},
                         {"skipped_steps", result.skipped_steps},
                         {"options", options_json}},
                        o.keep_checkpoints);
  };
  auto evaluate = [&]() -> json {
    if (!writes) return nullptr;
    json metrics = [&] {
      OnCpu on_cpu(*task, *optimizer, device);
      InFp32 in_fp32(task->trained(), fp64);
      return task->evaluate();
    }();
    task->train_mode();
    if (metrics.is_null()) return metrics;
    append_metrics(metrics_path, {{"step", step}, {"eval", metrics}});
    log_info("step ", step, ": held-out ", task->summarize(metrics));
    return metrics;
  };

  task->train_mode();
  std::vector<torch::Tensor> parameters;
  for (const auto& p : task->trained().parameters())
    if (p.requires_grad()) parameters.push_back(p);
  if (parallel) {  // everyone starts from rank 0's weights
    std::vector<torch::Tensor> state_tensors;
    for (const auto& p : task->trained().parameters()) state_tensors.push_back(p);
    for (const auto& b : task->trained().buffers()) state_tensors.push_back(b);
    parallel->broadcast(state_tensors);
    parallel->attach(parameters);
  }
  const int loader_threads =
      o.loader_threads >= 0 ? o.loader_threads
                            : std::clamp(static_cast<int>(std::thread::hardware_concurrency()) / 2, 1, 4);
  BatchLoader loader(
      *task,
      [&](int64_t s) {
        const std::vector<int64_t> indices = order.indices(s);
        std::vector<std::vector<int64_t>> shares;
        for (int64_t m = 0; m < o.accumulate; ++m) {
          const auto first = indices.begin() + m * micro + rank * share;
          shares.emplace_back(first, first + share);
        }
        return shares;
      },
      loader_threads);
  std::unique_ptr<Progress> bar;
  const int64_t first_step = step;
  int64_t last_eval = step;
  auto last_checkpoint = Clock::now();
  const auto loop_start = Clock::now();
  while (total == 0 || step < total) {
    const auto [begin, end, peak_lr] = task->schedule_part(step, total, o.learning_rate.value());
    const int64_t length = std::max<int64_t>(end - begin, 1);  // (total is 0 while --minutes times steps)
    const double lr = cosine_lr(
        step - begin, length,
        o.warmup_steps > 0 ? o.warmup_steps : std::max<int64_t>(1, (end > begin ? length : 200) / 20),
        peak_lr);
    set_learning_rate(*optimizer, lr);
    std::vector<std::any> batches = loader.take(step);
    optimizer->zero_grad();
    double loss_value = 0, allreduce_seconds = 0;
    json parts = json::object();
    for (int64_t m = 0; m < o.accumulate; ++m) {
      const StepContext context{step_generator, precision, rank * share, micro, parallel.get(), device, step};
      StepLoss l = task->loss(batches[static_cast<size_t>(m)], context);
      const double value = l.loss.item<double>();
      check(std::isfinite(value), "training diverged at step ", step, " (loss ", value,
            "); lower --lr or raise --warmup");
      const bool last = m + 1 == o.accumulate;
      if (parallel && last) parallel->begin_backward();
      (o.accumulate > 1 ? l.loss / static_cast<double>(o.accumulate) : l.loss).backward();
      if (parallel && last) allreduce_seconds = parallel->finish_backward();
      loss_value += value / static_cast<double>(o.accumulate);
      for (const auto& [name, t] : l.parts)
        parts[name] = parts.value(name, 0.0) + t.item<double>() / static_cast<double>(o.accumulate);
    }
    int64_t skipped = task->skipped().count;
    if (parallel) {  // the logged loss is the whole batch's: the mean of the workers'
      std::vector<double> values{loss_value, static_cast<double>(skipped - skipped_at_start)};
      for (const auto& [name, v] : parts.items()) values.push_back(v.get<double>());
      const auto sum = parallel->sum(torch::tensor(values, torch::kFloat64));
      loss_value = sum[0].item<double>() / world;
      skipped = skipped_at_start + sum[1].item<int64_t>();
      int64_t k = 2;
      for (auto& [name, v] : parts.items()) v = sum[k++].item<double>() / world;
    }
    if (skipped != result.skipped_records) check_skipped(skipped);
    // A non-finite gradient would reach every weight through the clipping (which scales by 1 / norm): the
    // update is skipped instead, as mixed-precision loss scaling does, and only a run of them stops training.
    const double grad_norm = torch::nn::utils::clip_grad_norm_(
        parameters, o.grad_clip > 0 ? o.grad_clip : std::numeric_limits<double>::infinity());
    if (std::isfinite(grad_norm)) {
      optimizer->step();
      task->after_update();
      bad_in_a_row = 0;
    } else {
      ++result.skipped_steps;
      log_warn("step ", step, ": non-finite gradient, update skipped");
      check(++bad_in_a_row < 10, "training diverged at step ", step,
            " (10 non-finite gradients in a row); lower --lr or raise --warmup");
    }
    ++step;
    result.final_loss = loss_value;

    json line{{"step", step},
              {"loss", loss_value},
              {"lr", lr},
              {"grad_norm", grad_norm},
              {"seconds", seconds_since(loop_start)}};
    line.update(parts);
    line.update(task->step_metrics());
    if (parallel) line["allreduce_seconds"] = allreduce_seconds;
    if (writes) append_metrics(metrics_path, line);
    if (o.minutes > 0 && !(checkpoint && !given.count("minutes"))) {
      int64_t planned = budget.plan(step, total, Clock::now());
      if (parallel)  // rank 0's plan, so that every worker stops at the same step
        planned = parallel->sum(torch::tensor(rank == 0 ? planned : 0, torch::kFloat64)).item<int64_t>();
      if (planned != total && bar) bar->set_total(planned);
      total = planned;
    }
    if (!bar && total > 0) bar = std::make_unique<Progress>("train", total, "step", first_step);
    if (bar) bar->update(step, {{"loss", loss_value}, {"lr", lr}});
    if (total == 0) continue;
    const int64_t every = o.eval_every > 0 ? o.eval_every : std::max<int64_t>(1, total / 5);
    // A --minutes run's re-plans move `every`: it evaluates `every` steps after its last evaluation, as
    // multiples of a moving `every` could come twice in a few steps, or not at all.
    if (step < total && (o.minutes > 0 ? step - last_eval >= every : step % every == 0)) {
      evaluate();
      last_eval = step;
    }
    const bool stopping = o.stop_after > 0 && step - first_step >= o.stop_after && step < total;
    const bool due =
        o.checkpoint_every > 0 ? step % o.checkpoint_every == 0 : seconds_since(last_checkpoint) > 600;
    if (step < total && (due || stopping)) {
      save_checkpoint();
      last_checkpoint = Clock::now();
    }
    if (stopping) {
      if (bar) bar->finish();
      log_info("stopped after ", o.stop_after, " steps at step ", step, "; continue with --resume");
      result.steps = step;
      result.total_steps = total;
      result.seconds = seconds_since(start);
      return result;
    }
  }
  if (bar) bar->finish();
  result.final_eval = evaluate();
  save_checkpoint();
  if (writes) {
    OnCpu on_cpu(*task, *optimizer, device);
    InFp32 in_fp32(task->trained(), fp64);
    task->save_model(o.out);
    try {  // a convenience: never what fails a finished run
      write_run_report(o.out / "report.html", metrics_path, result.final_eval, {},
                       str_cat(family.model_type, " run: ", o.out.filename().string()));
    } catch (const std::exception& e) {
      log_warn("report.html not written: ", e.what());
    }
  }
  result.steps = step;
  result.total_steps = total;
  result.finished = true;
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace mmlearn
