#include "mmlearn/train/run_checkpoint.h"

#include <torch/serialize.h>
#include <unistd.h>

#include <sstream>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kPrefix = "step-";

std::string folder_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "%s%08lld", kPrefix, static_cast<long long>(step));
  return name;
}

// The step a complete checkpoint folder holds, or -1 for anything else (temporary folders, stray files).
int64_t step_of(const fs::path& folder) {
  const std::string name = folder.filename().string();
  if (name.rfind(kPrefix, 0) != 0 || !fs::exists(folder / "state.json")) return -1;
  try {
    size_t used = 0;
    const int64_t step = std::stoll(name.substr(5), &used);
    return used == name.size() - 5 ? step : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

// The tensors of `trained` that `model` does not hold (training-only heads), by their names in `trained`.
TensorMap training_only(TrainTask& task) {
  std::set<const void*> in_model;
  for (const auto& [name, t] : parameter_map(task.model())) in_model.insert(t.unsafeGetTensorImpl());
  TensorMap out;
  for (const auto& [name, t] : parameter_map(task.trained()))
    if (!in_model.count(t.unsafeGetTensorImpl())) out[name] = t;
  return out;
}

}  // namespace

void save_run_checkpoint(const fs::path& checkpoints, int64_t step, TrainTask& task,
                         torch::optim::Optimizer& optimizer, const TensorMap& rng, const TensorMap& fp64,
                         const json& state, int64_t keep) {
  fs::create_directories(checkpoints);
  const fs::path final_dir = checkpoints / folder_name(step);
  const fs::path temp = checkpoints / ("." + folder_name(step) + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(temp);
  fs::create_directories(temp);
  task.save_model(temp / "model");
  if (const TensorMap extra = training_only(task); !extra.empty())
    save_safetensors(temp / "training.safetensors", extra);
  {
    std::ostringstream bytes;
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.save_to(bytes);
    write_file_atomic(temp / "optimizer.pt", bytes.str());
  }
  save_safetensors(temp / "rng.safetensors", rng);
  if (!fp64.empty()) save_safetensors(temp / "fp64.safetensors", fp64);
  write_file_atomic(temp / "state.json", state.dump(2) + "\n");
  sync_directory(temp);
  fs::remove_all(final_dir);  // a run resumed from an earlier step writes this step again
  fs::rename(temp, final_dir);
  sync_directory(checkpoints);

  std::vector<std::pair<int64_t, fs::path>> complete;
  for (const auto& entry : fs::directory_iterator(checkpoints)) {
    const int64_t s = step_of(entry.path());
    if (s >= 0)
      complete.emplace_back(s, entry.path());
    else if (entry.path().filename().string().find(".tmp-") != std::string::npos && entry.path() != temp)
      fs::remove_all(entry.path());  // left by a run killed while writing
  }
  std::sort(complete.rbegin(), complete.rend());
  for (size_t i = static_cast<size_t>(keep); i < complete.size(); ++i) fs::remove_all(complete[i].second);
}

std::optional<fs::path> latest_run_checkpoint(const fs::path& checkpoints) {
  if (!fs::is_directory(checkpoints)) return std::nullopt;
  std::optional<fs::path> best;
  int64_t best_step = -1;
  for (const auto& entry : fs::directory_iterator(checkpoints))
    if (const int64_t s = step_of(entry.path()); s > best_step) best_step = s, best = entry.path();
  return best;
}

json read_run_state(const fs::path& checkpoint) {
  json state = read_json_file(checkpoint / "state.json");
  const std::string where = (checkpoint / "state.json").string();
  check(state.is_object() && state.contains("step") && state["step"].is_number_integer() &&
            state.contains("total_steps") && state["total_steps"].is_number_integer() &&
            state.contains("options") && state["options"].is_object(),
        where, ": not a checkpoint state (expected an object with step, total_steps and options)");
  return state;
}

TensorMap load_run_checkpoint(const fs::path& checkpoint, TrainTask& task,
                              torch::optim::Optimizer& optimizer) {
  const TensorMap expected = training_only(task);
  if (!expected.empty()) {
    const fs::path path = checkpoint / "training.safetensors";
    check(fs::exists(path), path.string(), ": missing (the checkpoint is incomplete)");
    const TensorMap stored = load_safetensors(path);
    for (const auto& [name, t] : expected) {
      auto it = stored.find(name);
      check(it != stored.end() && it->second.sizes() == t.sizes(), path.string(), ": tensor \"", name,
            "\" is missing or has another shape");
      torch::NoGradGuard no_grad;
      t.copy_(it->second);
    }
  }
  if (const fs::path path = checkpoint / "fp64.safetensors"; fs::exists(path))
    load_parameters(task.trained(), load_safetensors(path), path.string());
  const fs::path optimizer_path = checkpoint / "optimizer.pt";
  try {
    std::istringstream bytes(read_file(optimizer_path));
    torch::serialize::InputArchive archive;
    archive.load_from(bytes);
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw Error(str_cat(optimizer_path.string(), ": not a readable optimizer state (",
                        e.what_without_backtrace(), "); resume from an earlier checkpoint or start again"));
  }
  return load_safetensors(checkpoint / "rng.safetensors");
}

}  // namespace mmlearn
