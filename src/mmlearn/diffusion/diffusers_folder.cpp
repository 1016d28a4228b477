#include "mmlearn/diffusion/diffusers_folder.h"

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"

namespace mmlearn {
namespace fs = std::filesystem;

nlohmann::json read_diffusers_config(const fs::path& dir) {
  check(fs::is_directory(dir), dir.string(), ": not a directory (expected config.json and ",
        kDiffusersWeights, ")");
  return read_json_file(dir / "config.json");
}

void load_diffusers_weights(torch::nn::Module& module, const fs::path& dir) {
  const fs::path weights = dir / kDiffusersWeights;
  check(fs::exists(weights), weights.string(), ": missing (the folder holds no weights)");
  load_parameters(module, weights);
}

void save_diffusers_folder(const torch::nn::Module& module, const nlohmann::json& config,
                           const fs::path& dir) {
  fs::create_directories(dir);
  save_parameters(module, dir / kDiffusersWeights);
  write_file_atomic(dir / "config.json", config.dump(2) + "\n");
}

}  // namespace mmlearn
