// Data-parallel training as users run it: `train --nproc 2` ends with the weights one process reaches with
// the same global batch and seed; the same holds for two workers in separate network namespaces started the
// torchrun way (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, GLOO_SOCKET_IFNAME); a worker that dies takes
// the job down with a message instead of leaving the others waiting.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "../test_util.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/data/mood.h"
#include "mmlearn/data/shapes.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;

const fs::path& data_dir() {
  static const fs::path dir = [] {
    const fs::path d =
        fs::temp_directory_path() / "mmlearn-tests" / ("parallel-" + std::to_string(::getpid()));
    fs::remove_all(d);
    data::generate_shapes(d / "shapes", {.n_train = 24, .n_test = 4, .seed = 8, .image_size = 32});
    data::generate_mood(d / "mood", {.n_train = 48, .n_test = 8, .seed = 8});
    return d;
  }();
  return dir;
}

std::string train_args(const std::string& preset, const std::string& data, int64_t steps,
                       const std::string& precision = "fp32") {
  return str_cat(" train --preset ", preset, " --data ", (data_dir() / data).string(), " --steps ", steps,
                 " --batch-size 8 --seed 5 --lr 1e-4 --precision ", precision,
                 " --vocab-size 600 --eval-every 1000 --eval-samples 2 --out ");
}

double max_difference(const fs::path& a, const fs::path& b) {
  const TensorMap x = load_safetensors(a / "model.safetensors"),
                  y = load_safetensors(b / "model.safetensors");
  EXPECT_EQ(x.size(), y.size());
  double worst = 0;
  for (const auto& [name, t] : x) {
    if (!y.count(name)) continue;
    worst =
        std::max(worst, (t.to(torch::kDouble) - y.at(name).to(torch::kDouble)).abs().max().item<double>());
  }
  return worst;
}

std::vector<nlohmann::json> step_lines(const fs::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j);
  }
  return out;
}

int64_t lines(const fs::path& path) {
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

// Trains with one process and with `--nproc 2`; returns the largest weight difference. Every step's loss
// (the whole batch's) and gradient norm must agree: AdamW hardly notices a gradient off by a constant factor,
// the gradient norm does.
double two_workers_against_one_process(const std::string& preset, const std::string& data,
                                       double relative_tolerance = 1e-5,
                                       const std::string& precision = "fp32") {
  const fs::path dir = test::temp_dir(preset);
  const std::string args = train_args(preset, data, 6, precision);
  const auto one = test::run_cli("--threads 1" + args + (dir / "one").string());
  EXPECT_EQ(one.status, 0) << one.output;
  const auto two = test::run_cli("--threads 1" + args + (dir / "two").string() + " --nproc 2");
  EXPECT_EQ(two.status, 0) << two.output;
  if (one.status || two.status) return 1e9;
  const auto a = step_lines(dir / "one"), b = step_lines(dir / "two");
  EXPECT_EQ(a.size(), 6u);
  EXPECT_EQ(a.size(), b.size());  // rank 0 alone writes the run
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    for (const char* key : {"loss", "grad_norm"})
      EXPECT_NEAR(a[i][key].get<double>(), b[i][key].get<double>(),
                  relative_tolerance * std::abs(a[i][key].get<double>()))
          << key << " at step " << i + 1;
    EXPECT_TRUE(b[i].contains("allreduce_seconds")) << b[i].dump();
  }
  const double difference = max_difference(dir / "one", dir / "two");
  std::cout << preset << ": largest weight difference, 2 workers vs 1 process: " << difference << "\n";
  return difference;
}

TEST(DataParallel, TwoWorkersTrainClipAsOneProcess) {
  EXPECT_LE(two_workers_against_one_process("clip-tiny-vit", "shapes"), 1e-6);
}

// Modality dropout and the per-modality losses (a mean over the examples that have each modality) are the
// whole batch's, however it is split.
TEST(DataParallel, TwoWorkersTrainFusionClassifierAsOneProcess) {
  EXPECT_LE(two_workers_against_one_process("fusion-tiny", "mood"), 1e-6);
}

// clip-tiny's ResNet tower normalizes over the whole batch (SyncBatchNorm). In fp32 it agrees less closely:
// the two runs' activations differ in the last bits, and a ReLU input that rounds to the other side of zero
// in one of them changes its channel's gradient (and the layers' below it by ~0.1 %) and moves the channel's
// first AdamW step by up to 2 x lr (here 1e-4); over six steps the gradient norms drift apart by up to 0.3 %
// — rounding, not method: one process run with --threads 1 and with --threads 2 ends 4.8e-4 apart here too.
// In fp64 the rounding is 1e-16 and no ReLU input comes that close to zero: the runs agree as the others do.
// Without SyncBatchNorm (each worker's own statistics) the weights differ by 0.14 at the default lr.
TEST(DataParallel, TwoWorkersTrainClipResNetWithSyncBatchNormAsOneProcess) {
  EXPECT_LE(two_workers_against_one_process("clip-tiny", "shapes", 1e-9, "fp64"), 1e-6);
  EXPECT_LE(two_workers_against_one_process("clip-tiny", "shapes", 1e-2), 1e-3);
}

TEST(DataParallel, BatchMustSplitEvenlyAcrossWorkers) {
  const fs::path dir = test::temp_dir("run");
  const auto r = test::run_cli(str_cat("train --preset clip-tiny --data ", (data_dir() / "shapes").string(),
                                       " --steps 2 --batch-size 9 --nproc 2 --out ", (dir / "run").string()));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--batch-size 9 is not a multiple of --nproc 2"), std::string::npos) << r.output;
  const auto bad =
      test::run_shell(str_cat("env WORLD_SIZE=2 RANK=7 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 ", MMLEARN_CLI,
                              " --quiet", train_args("clip-tiny", "shapes", 2), (dir / "env").string()));
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("RANK=7"), std::string::npos) << bad.output;
}

// The pids of `parent`'s children.
std::vector<pid_t> children(pid_t parent) {
  std::ifstream in(str_cat("/proc/", parent, "/task/", parent, "/children"));
  std::vector<pid_t> out;
  for (pid_t p; in >> p;) out.push_back(p);
  return out;
}

TEST(DataParallel, AWorkerThatDiesStopsTheJob) {
  const fs::path dir = test::temp_dir("run");
  const fs::path log = dir / "log.txt";
  const pid_t launcher = ::fork();
  ASSERT_GE(pid_t(launcher), 0);
  if (launcher == 0) {
    const std::string command =
        str_cat("exec ", MMLEARN_CLI, " --threads 1", train_args("clip-tiny", "shapes", 100000),
                (dir / "run").string(), " --nproc 2 >", log.string(), " 2>&1");
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Once training has begun (rank 0 writes a metrics line a step), kill worker 1.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (lines(dir / "run" / "metrics.jsonl") < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::vector<pid_t> workers = children(launcher);
  ASSERT_EQ(workers.size(), 2u);
  ::kill(workers[1], SIGKILL);
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(launcher, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (done == 0) {
    ::kill(launcher, SIGKILL);
    ::waitpid(launcher, &status, 0);
  }
  ASSERT_NE(done, 0) << "the job hung after a worker died";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  std::ifstream in(log);
  const std::string output((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(output.find("worker 1 of 2 was killed by signal 9"), std::string::npos) << output;
  for (pid_t w : workers) EXPECT_NE(::kill(w, 0), 0) << "worker " << w << " is still running";
}

// Started the torchrun way without a launcher, the surviving worker fails its next collective at once.
TEST(DataParallel, WithoutALauncherAPeerThatDiesFailsTheOthers) {
  const fs::path dir = test::temp_dir("run");
  const int port = 20000 + static_cast<int>(::getpid() % 20000);
  auto start = [&](int rank) {
    return std::async(std::launch::async, [&, rank] {
      return test::run_shell(str_cat(
          "env WORLD_SIZE=2 RANK=", rank, " LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=", port, " ",
          MMLEARN_CLI, " --threads 1", train_args("clip-tiny", "shapes", rank == 0 ? 100000 : 4),
          (dir / str_cat("rank", rank)).string()));
    });
  };
  auto rank0 = start(0), rank1 = start(1);  // rank 1 stops by itself after 4 steps: rank 0 is left alone
  const auto one = rank1.get();
  ASSERT_EQ(rank0.wait_for(std::chrono::minutes(3)), std::future_status::ready) << "rank 0 hung";
  const auto zero = rank0.get();
  EXPECT_EQ(one.status, 0) << one.output;
  EXPECT_EQ(zero.status, 1) << zero.output;
  EXPECT_NE(zero.output.find("data-parallel"), std::string::npos) << zero.output;
}

// Two network namespaces joined by a veth pair stand for two machines.
class NetworkNamespaces : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || std::system("command -v ip >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "needs root and iproute2 to make network namespaces";
    const std::string id = std::to_string(::getpid() % 100000);
    a_ = "mma" + id, b_ = "mmb" + id;
    subnet_ = str_cat("10.213.", ::getpid() % 250, ".");
    const std::string setup =
        str_cat("ip netns add ", a_, " && ip netns add ", b_, " && ip link add v", a_, " netns ", a_,
                " type veth peer name v", b_, " netns ", b_, " && ip -n ", a_, " addr add ", subnet_,
                "1/24 dev v", a_, " && ip -n ", b_, " addr add ", subnet_, "2/24 dev v", b_, " && ip -n ", a_,
                " link set v", a_, " up && ip -n ", b_, " link set v", b_, " up && ip -n ", a_,
                " link set lo up && ip -n ", b_, " link set lo up");
    if (std::system(setup.c_str()) != 0) {
      TearDown();
      GTEST_SKIP() << "cannot make network namespaces here (" << setup << ")";
    }
  }
  void TearDown() override {
    if (a_.empty()) return;
    std::system(("ip netns del " + a_ + " 2>/dev/null; ip netns del " + b_ + " 2>/dev/null").c_str());
  }
  std::string a_, b_, subnet_;
};

TEST_F(NetworkNamespaces, GlooTrainsAcrossThemAsOneProcess) {
  const fs::path dir = test::temp_dir("run");
  const std::string args = train_args("clip-tiny-vit", "shapes", 4);
  ASSERT_EQ(test::run_cli("--threads 1" + args + (dir / "one").string()).status, 0);
  auto worker = [&](int rank) {
    const std::string& ns = rank == 0 ? a_ : b_;
    return std::async(std::launch::async, [&, rank] {
      return test::run_shell(str_cat("ip netns exec ", ns, " env WORLD_SIZE=2 RANK=", rank,
                                     " LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR=", subnet_,
                                     "1 MASTER_PORT=29517 GLOO_SOCKET_IFNAME=v", ns, " ", MMLEARN_CLI,
                                     " --quiet --threads 1", args, (dir / str_cat("rank", rank)).string()));
    });
  };
  auto zero = worker(0), one = worker(1);
  const auto r0 = zero.get(), r1 = one.get();
  ASSERT_EQ(r0.status, 0) << r0.output;
  ASSERT_EQ(r1.status, 0) << r1.output;
  EXPECT_LE(max_difference(dir / "one", dir / "rank0"), 1e-6);
  EXPECT_FALSE(fs::exists(dir / "rank1" / "model.safetensors"));  // rank 0 writes the run
}

}  // namespace
}  // namespace mmlearn
