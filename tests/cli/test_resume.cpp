// Exact resume as users meet it: a training run killed with SIGKILL at a random step and continued with
// --resume ends with the same weights, bit for bit, as the run that never stopped — for every family.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <random>
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
    const fs::path d = fs::temp_directory_path() / "mmlearn-tests" / ("resume-" + std::to_string(::getpid()));
    fs::remove_all(d);
    data::generate_shapes(d / "shapes",
                          {.n_train = 24, .n_test = 4, .seed = 6, .image_size = 32, .audio = true});
    data::generate_mood(d / "mood", {.n_train = 48, .n_test = 8, .seed = 6});
    data::generate_shapes(
        d / "edit",
        {.n_train = 24, .n_test = 4, .seed = 6, .image_size = 32, .task = data::ShapesTask::edit});
    // The CLIP a combiner composes.
    const auto r =
        test::run_cli(str_cat("train --preset clip-tiny --data ", (d / "shapes").string(),
                              " --steps 1 --batch-size 4 --vocab-size 600 --out ", (d / "clip").string()));
    if (r.status != 0) throw Error("cannot train the CLIP the combiner needs: " + r.output);
    // The generator an instruction editor starts from.
    const auto g = test::run_cli(
        str_cat("train --task generate --data ", (d / "shapes").string(),
                " --steps 2 --autoencoder-steps 1 --batch-size 4 --vocab-size 600 --eval-every 1000 --out ",
                (d / "generator").string()));
    if (g.status != 0) throw Error("cannot train the generator an editor starts from: " + g.output);
    return d;
  }();
  return dir;
}

// The newest checkpoint's step in a run directory, or -1.
int64_t latest_step(const fs::path& run) {
  int64_t latest = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run / "checkpoint", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) == 0 && fs::exists(e.path() / "state.json"))
      latest = std::max<int64_t>(latest, std::stoll(name.substr(5)));
  }
  return latest;
}

// Every tensor of the model a run wrote: model.safetensors, or a generator's parts (vae/, unet/, ...), by
// file and name.
TensorMap model_tensors(const fs::path& run) {
  TensorMap all;
  for (const auto& e : fs::recursive_directory_iterator(run)) {
    const fs::path relative = fs::relative(e.path(), run);
    if (e.path().extension() != ".safetensors" || *relative.begin() == "checkpoint") continue;
    for (auto& [name, t] : load_safetensors(e.path())) all[relative.string() + ":" + name] = t;
  }
  EXPECT_FALSE(all.empty()) << run.string() << " holds no model";
  return all;
}

// `family_args`: what the family needs (its vocabulary, or the model it starts from).
void killed_and_resumed_equals_uninterrupted(const std::string& preset, const std::string& data,
                                             const std::string& family_args) {
  const int64_t steps = 8;
  std::random_device random;
  const int64_t kill_at = 1 + static_cast<int64_t>(random() % (steps - 2));  // 1 .. steps - 2
  std::cout << preset << ": killing at step " << kill_at << " of " << steps << "\n";
  const fs::path dir = test::temp_dir(preset);
  const std::string args =
      str_cat(" train --preset ", preset, " --data ", (data_dir() / data).string(), " --steps ", steps,
              " --batch-size 4 ", family_args, " --eval-every 1000 --eval-samples 2",
              " --checkpoint-every 1 --threads 1 --out ");
  ASSERT_EQ(test::run_cli(args + (dir / "straight").string()).status, 0);

  const fs::path killed = dir / "killed";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string command =
        std::string(MMLEARN_CLI) + " --quiet" + args + killed.string() + " >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  bool exited = false;
  while (latest_step(killed) < kill_at) {  // wait for the run to reach the step, then kill it there
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it was killed";
  const int64_t stopped_at = latest_step(killed);
  EXPECT_LT(stopped_at, steps);
  EXPECT_FALSE(fs::exists(killed / "model.safetensors"));

  const auto resumed = test::run_cli("train --resume --threads 1 --out " + killed.string());
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  const TensorMap a = model_tensors(dir / "straight"), b = model_tensors(killed);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a)
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name << " differs (killed at step " << stopped_at << ")";
}

TEST(Resume, KilledClipRunEndsAsIfUninterrupted) {
  killed_and_resumed_equals_uninterrupted("clip-tiny", "shapes", "--vocab-size 600");
}
TEST(Resume, KilledClapRunEndsAsIfUninterrupted) {
  killed_and_resumed_equals_uninterrupted("clap-tiny", "shapes", "--vocab-size 600");
}
TEST(Resume, KilledWhisperRunEndsAsIfUninterrupted) {
  killed_and_resumed_equals_uninterrupted("whisper-tiny-shapes", "shapes", "--vocab-size 300");
}
TEST(Resume, KilledClassifierRunEndsAsIfUninterrupted) {
  killed_and_resumed_equals_uninterrupted("fusion-tiny", "mood", "--vocab-size 600");
}
TEST(Resume, KilledCaptionerRunEndsAsIfUninterrupted) {
  killed_and_resumed_equals_uninterrupted("captioner-tiny", "shapes", "--vocab-size 600");
}
// Killed while it trains the autoencoder or the UNet (the run switches at step 3).
TEST(Resume, KilledGeneratorRunEndsAsIfUninterrupted) {
  killed_and_resumed_equals_uninterrupted("generator-tiny", "shapes",
                                          "--vocab-size 600 --autoencoder-steps 3");
}
// From a trained generator: no autoencoder part, and the generator's latent scale kept across the resume.
TEST(Resume, KilledEditorRunEndsAsIfUninterrupted) {
  killed_and_resumed_equals_uninterrupted("editor-tiny", "edit",
                                          "--init-from " + (data_dir() / "generator").string());
}
TEST(Resume, KilledCombinerRunEndsAsIfUninterrupted) {
  killed_and_resumed_equals_uninterrupted("combiner", "edit",
                                          "--init-from " + (data_dir() / "clip").string());
}

}  // namespace
}  // namespace mmlearn
