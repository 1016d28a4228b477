#include "mmlearn/distributed/data_parallel.h"

#include <torch/autograd.h>

#include <cstdlib>
#include <mutex>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "mmlearn/core/error.h"

namespace mmlearn {

namespace {

using Clock = std::chrono::steady_clock;

std::optional<std::string> variable(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

int integer_variable(const char* name, int low, int high) {
  const std::string text = variable(name).value();
  size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < low || value > high)
    throw UsageError(str_cat("environment variable ", name, "=", text, ": expected an integer in [", low,
                             ", ", high, "]"));
  return value;
}

// c10d reports failures as c10::Error with a C++ backtrace; users get the message, and what it means.
template <class F>
auto collective(const char* what, F&& f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw Error(str_cat("data-parallel ", what, " failed: ", e.what_without_backtrace(),
                        " (another worker has stopped or cannot be reached; its own log says why)"));
  }
}

// What `t` travels as: Gloo reduces fp32 and fp64; bf16 (autocast) travels as fp32.
torch::ScalarType wire_type(const torch::Tensor& t) {
  return t.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

// The sum over processes of `local`, in `dtype`, returned in local's own type.
torch::Tensor all_reduce_sum(c10d::ProcessGroupGloo& gloo, const torch::Tensor& local,
                             torch::ScalarType dtype, const char* what) {
  std::vector<torch::Tensor> t{local.detach().to(dtype).contiguous().clone()};
  collective(what, [&] { return gloo.allreduce(t)->wait(); });
  return t[0].to(local.scalar_type());
}

}  // namespace

std::optional<ParallelEnvironment> ParallelEnvironment::from_environment() {
  ParallelEnvironment env;
  constexpr int kMaxWorld = 1 << 16;
  if (variable("WORLD_SIZE")) {
    env.world = integer_variable("WORLD_SIZE", 1, kMaxWorld);
    if (env.world == 1) return std::nullopt;
    for (const char* name : {"RANK", "MASTER_ADDR", "MASTER_PORT"})
      if (!variable(name))
        throw UsageError(str_cat("WORLD_SIZE=", env.world, " asks for data-parallel training, but ", name,
                                 " is not set (torchrun sets RANK, MASTER_ADDR and MASTER_PORT)"));
    env.rank = integer_variable("RANK", 0, env.world - 1);
    env.local_rank = variable("LOCAL_RANK") ? integer_variable("LOCAL_RANK", 0, env.world - 1) : 0;
    env.local_world =
        variable("LOCAL_WORLD_SIZE") ? integer_variable("LOCAL_WORLD_SIZE", 1, env.world) : env.world;
  } else if (variable("SLURM_NTASKS") && variable("SLURM_PROCID")) {
    env.world = integer_variable("SLURM_NTASKS", 1, kMaxWorld);
    if (env.world == 1) return std::nullopt;
    env.rank = integer_variable("SLURM_PROCID", 0, env.world - 1);
    env.local_rank = variable("SLURM_LOCALID") ? integer_variable("SLURM_LOCALID", 0, env.world - 1) : 0;
    env.local_world =
        variable("SLURM_NTASKS_PER_NODE") &&
                variable("SLURM_NTASKS_PER_NODE")->find_first_not_of("0123456789") == std::string::npos
            ? integer_variable("SLURM_NTASKS_PER_NODE", 1, env.world)
            : 1;
    if (!variable("MASTER_ADDR") || !variable("MASTER_PORT"))
      throw UsageError("SLURM_NTASKS=" + std::to_string(env.world) +
                       " asks for data-parallel training: set MASTER_ADDR (the first node's address) and "
                       "MASTER_PORT (a free port there) in the job script");
  } else {
    return std::nullopt;
  }
  env.master_addr = *variable("MASTER_ADDR");
  env.master_port = integer_variable("MASTER_PORT", 1, 65535);
  env.interface = variable("GLOO_SOCKET_IFNAME").value_or("");
  return env;
}

const DataParallel* active_group = nullptr;

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

// DDP's bucketed all-reduce. Each parameter's gradient hook copies the finished gradient (with what earlier
// micro-batches accumulated) into its bucket's flat buffer; when a bucket is complete its all-reduce starts
// on Gloo's threads. Buckets start in index order on every process, since collectives pair up by order.
struct DataParallel::Reducer {
  struct Bucket {
    torch::Tensor flat;            // the gradients, then one "has a gradient" flag per member
    std::vector<size_t> members;   // indices into parameters
    std::vector<int64_t> offsets;  // of each member in flat
    size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  int world = 1;
  std::vector<torch::Tensor> parameters;
  std::vector<std::pair<size_t, size_t>> place;  // parameter -> (bucket, member)
  std::vector<unsigned> hooks;
  std::vector<Bucket> buckets;
  std::vector<bool> ready;
  size_t next = 0;  // the next bucket to start
  bool active = false;
  std::mutex mutex;

  ~Reducer() {
    for (size_t i = 0; i < hooks.size(); ++i) parameters[i].remove_hook(hooks[i]);
  }

  torch::Tensor slot(size_t i) {
    auto [b, m] = place[i];
    return buckets[b].flat.narrow(0, buckets[b].offsets[m], parameters[i].numel()).view_as(parameters[i]);
  }
  void mark(size_t i, bool has_gradient) {
    auto [b, m] = place[i];
    Bucket& bucket = buckets[b];
    bucket.flat[bucket.flat.size(0) - static_cast<int64_t>(bucket.members.size()) + static_cast<int64_t>(m)]
        .fill_(has_gradient ? 1.0 : 0.0);
    ready[i] = true;
    --bucket.pending;
  }
  void start_ready() {
    while (next < buckets.size() && buckets[next].pending == 0) {
      std::vector<torch::Tensor> tensors{buckets[next].flat};
      buckets[next].work = collective("gradient all-reduce", [&] { return gloo->allreduce(tensors); });
      ++next;
    }
  }
  void on_gradient(size_t i, const torch::Tensor& gradient) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!active || ready[i]) return;
    const torch::Tensor& accumulated = parameters[i].grad();
    torch::NoGradGuard no_grad;
    torch::Tensor into = slot(i);
    if (accumulated.defined())
      torch::add_out(into, accumulated, gradient);
    else
      into.copy_(gradient);
    mark(i, true);
    start_ready();
  }
};

DataParallel::DataParallel(const ParallelEnvironment& env, std::chrono::milliseconds timeout)
    : env_(env), group_(std::make_unique<Group>()) {
  collective("start", [&] {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = static_cast<size_t>(env.world);
    options.waitWorkers = true;
    options.timeout = std::chrono::minutes(5);  // for every worker to arrive
    auto store = c10::make_intrusive<c10d::PrefixStore>(
        "mmlearn", c10::make_intrusive<c10d::TCPStore>(env.master_addr, options));
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    if (!env.interface.empty())
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(env.interface));
    else
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
          env.local_world == env.world ? std::string("127.0.0.1") : env.master_addr));
    group_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world, gloo_options);
    return 0;
  });
  active_group = this;
}

DataParallel::~DataParallel() {
  if (active_group == this) active_group = nullptr;
}

const DataParallel* DataParallel::active() { return active_group; }

void DataParallel::broadcast(const std::vector<torch::Tensor>& tensors) const {
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    std::vector<torch::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
    collective("broadcast", [&] { return group_->gloo->broadcast(one)->wait(); });
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }
}

torch::Tensor DataParallel::sum(const torch::Tensor& local) const {
  return all_reduce_sum(*group_->gloo, local, torch::kFloat64, "all-reduce");
}

namespace {

// The all-gather whose backward sums the gathered gradient over processes and keeps this process's rows:
// d(sum of every process's loss) / d(own features).
struct GatherWithGrad : torch::autograd::Function<GatherWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& local,
                               int64_t group_address, int64_t rank, int64_t world) {
    auto* gloo = reinterpret_cast<c10d::ProcessGroupGloo*>(group_address);  // outlives the step's graph
    ctx->saved_data["group"] = group_address;
    ctx->saved_data["rank"] = rank;
    ctx->saved_data["rows"] = local.size(0);
    std::vector<torch::Tensor> input{local.detach().to(wire_type(local)).contiguous()};
    std::vector<std::vector<torch::Tensor>> output(1);
    for (int64_t r = 0; r < world; ++r) output[0].push_back(torch::empty_like(input[0]));
    collective("all-gather", [&] { return gloo->allgather(output, input)->wait(); });
    return torch::cat(output[0]).to(local.scalar_type());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradients) {
    auto* gloo = reinterpret_cast<c10d::ProcessGroupGloo*>(ctx->saved_data["group"].toInt());
    const int64_t rank = ctx->saved_data["rank"].toInt(), rows = ctx->saved_data["rows"].toInt();
    const auto g =
        all_reduce_sum(*gloo, gradients[0], wire_type(gradients[0]), "all-reduce of gathered gradients");
    return {g.narrow(0, rank * rows, rows), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// The sum over processes whose backward is the sum over processes of the gradients.
struct SumWithGrad : torch::autograd::Function<SumWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& local,
                               int64_t group_address) {
    auto* gloo = reinterpret_cast<c10d::ProcessGroupGloo*>(group_address);
    ctx->saved_data["group"] = group_address;
    return all_reduce_sum(*gloo, local, wire_type(local), "all-reduce");
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradients) {
    auto* gloo = reinterpret_cast<c10d::ProcessGroupGloo*>(ctx->saved_data["group"].toInt());
    return {all_reduce_sum(*gloo, gradients[0], wire_type(gradients[0]), "all-reduce of gradients"),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor DataParallel::sum_with_grad(const torch::Tensor& local) const {
  return SumWithGrad::apply(local, reinterpret_cast<int64_t>(group_->gloo.get()));
}

torch::Tensor batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  const DataParallel* group = DataParallel::active();
  if (!group || !bn.is_training() || !bn.options.track_running_stats()) return bn.forward(x);
  // Two passes, as a single process's batch norm: the mean, then the mean squared deviation from it.
  const std::vector<int64_t> dims{0, 2, 3};
  const auto shape = std::vector<int64_t>{1, x.size(1), 1, 1};
  const auto xf = x.to(wire_type(x));
  const double n =
      static_cast<double>(x.numel() / x.size(1) * group->world());  // every worker: the same share
  const auto mean = group->sum_with_grad(xf.sum(dims)) / n;
  const auto centered = xf - mean.view(shape);
  const auto var = group->sum_with_grad(centered.square().sum(dims)) / n;
  {
    torch::NoGradGuard no_grad;
    const double m = bn.options.momentum().value_or(0.1);
    bn.running_mean.mul_(1 - m).add_(mean.detach(), m);
    bn.running_var.mul_(1 - m).add_(var.detach() * (n / std::max(n - 1, 1.0)), m);
    bn.num_batches_tracked.add_(1);
  }
  auto y = centered * torch::rsqrt(var + bn.options.eps()).view(shape);
  if (bn.options.affine()) y = y * bn.weight.view(shape) + bn.bias.view(shape);
  return y.to(x.scalar_type());
}

torch::Tensor DataParallel::all_gather_with_grad(const torch::Tensor& local) const {
  return GatherWithGrad::apply(local, reinterpret_cast<int64_t>(group_->gloo.get()), env_.rank, env_.world);
}

void DataParallel::attach(const std::vector<torch::Tensor>& parameters, int64_t bucket_bytes) {
  reducer_ = std::make_unique<Reducer>();
  Reducer& r = *reducer_;
  r.gloo = group_->gloo;
  r.world = env_.world;
  for (const auto& p : parameters)
    if (p.requires_grad()) r.parameters.push_back(p);
  // Backward produces the last layers' gradients first: buckets fill from the end of the parameter list.
  std::vector<std::vector<size_t>> members(1);
  int64_t bytes = 0;
  const torch::ScalarType type = r.parameters.empty() ? torch::kFloat : r.parameters[0].scalar_type();
  for (size_t k = r.parameters.size(); k-- > 0;) {
    const auto& p = r.parameters[k];
    check(p.scalar_type() == type && (type == torch::kFloat || type == torch::kDouble),
          "data-parallel training needs all weights in fp32 or all in fp64; a parameter is ",
          c10::toString(p.scalar_type()));
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    if (bytes > 0 && bytes + size > bucket_bytes) members.emplace_back(), bytes = 0;
    members.back().push_back(k);
    bytes += size;
  }
  r.place.resize(r.parameters.size());
  for (const auto& m : members) {
    if (m.empty()) continue;
    Reducer::Bucket b;
    b.members = m;
    int64_t offset = 0;
    for (size_t j = 0; j < m.size(); ++j) {
      b.offsets.push_back(offset);
      offset += r.parameters[m[j]].numel();
      r.place[m[j]] = {r.buckets.size(), j};
    }
    b.flat = torch::zeros({offset + static_cast<int64_t>(m.size())}, type);
    r.buckets.push_back(std::move(b));
  }
  for (size_t i = 0; i < r.parameters.size(); ++i)
    r.hooks.push_back(
        r.parameters[i].register_hook([&r, i](const torch::Tensor& g) { r.on_gradient(i, g); }));
}

void DataParallel::begin_backward() {
  check(reducer_ != nullptr, "DataParallel::begin_backward before attach");
  Reducer& r = *reducer_;
  std::lock_guard<std::mutex> lock(r.mutex);
  r.ready.assign(r.parameters.size(), false);
  for (auto& b : r.buckets) b.pending = b.members.size(), b.work.reset();
  r.next = 0;
  r.active = true;
}

double DataParallel::finish_backward() {
  Reducer& r = *reducer_;
  const auto start = Clock::now();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    r.active = false;
    torch::NoGradGuard no_grad;
    // What backward did not reach on this process: what earlier micro-batches left, or nothing.
    for (size_t i = 0; i < r.parameters.size(); ++i) {
      if (r.ready[i]) continue;
      const torch::Tensor& g = r.parameters[i].grad();
      if (g.defined())
        r.slot(i).copy_(g);
      else
        r.slot(i).zero_();
      r.mark(i, g.defined());
    }
    r.start_ready();
  }
  torch::NoGradGuard no_grad;
  for (auto& b : r.buckets) {
    collective("gradient all-reduce", [&] { return b.work->wait(); });
    const int64_t flags = b.flat.size(0) - static_cast<int64_t>(b.members.size());
    for (size_t j = 0; j < b.members.size(); ++j) {
      torch::Tensor& p = r.parameters[b.members[j]];
      if (b.flat[flags + static_cast<int64_t>(j)].item<float>() == 0) {
        p.mutable_grad() = torch::Tensor();  // no process gave it a gradient: the optimizer leaves it
        continue;
      }
      auto mean = r.slot(b.members[j]) / static_cast<double>(r.world);
      if (p.grad().defined())
        p.mutable_grad().copy_(mean);
      else
        p.mutable_grad() = mean;
    }
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace mmlearn
