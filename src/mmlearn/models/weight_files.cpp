#include "mmlearn/models/weight_files.h"

#include <nlohmann/json.hpp>
#include <set>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/torch_file.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

TensorMap read_weight_file(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".safetensors") return load_safetensors(path);
  check(ext == ".pt" || ext == ".bin" || ext == ".pth", path.string(),
        ": unknown checkpoint type (expected .safetensors, or a torch.save file .pt/.bin/.pth)");
  TensorMap out;
  for (auto& [key, t] : read_state_dict(path)) out[key] = std::move(t);
  return out;
}

TensorMap read_hf_weights(const fs::path& dir) {
  if (fs::exists(dir / "model.safetensors")) return load_safetensors(dir / "model.safetensors");
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const json j = read_json_file(index);
    check(j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
          ": missing object field \"weight_map\"");
    std::set<std::string> shards;
    for (const auto& [key, file] : j["weight_map"].items()) {
      check(file.is_string(), index.string(), ": weight_map.", key, " must be a file name");
      const std::string name = file.get<std::string>();
      check(fs::path(name).filename() == name, index.string(), ": weight_map.", key, ": \"", name,
            "\" must be a file in the same directory");
      shards.insert(name);
    }
    TensorMap out;
    for (const auto& shard : shards)
      for (auto& [key, t] : load_safetensors(dir / shard)) {
        check(j["weight_map"].contains(key) && j["weight_map"][key] == shard, (dir / shard).string(),
              ": tensor \"", key, "\" is not listed for this shard in ", index.string());
        out[key] = std::move(t);
      }
    for (const auto& [key, file] : j["weight_map"].items())
      check(out.count(key), index.string(), ": tensor \"", key, "\" is not in ", file.get<std::string>());
    return out;
  }
  if (fs::exists(dir / "pytorch_model.bin")) return read_weight_file(dir / "pytorch_model.bin");
  throw Error(str_cat(dir.string(),
                      ": no weights (expected model.safetensors, model.safetensors.index.json "
                      "with its shards, or pytorch_model.bin)"));
}

std::string config_model_type(const fs::path& dir) {
  if (!fs::is_directory(dir) || !fs::exists(dir / "config.json")) return "";
  try {
    const json config = read_json_file(dir / "config.json");
    return config.is_object() ? string_value(config, "model_type") : "";
  } catch (const Error&) {
    return "";
  }
}

void check_config_fits_weights(double least, const TensorMap& weights, const std::string& config_where,
                               const std::string& weights_where) {
  double held = 0;
  for (const auto& [name, t] : weights) held += static_cast<double>(t.numel());
  check(least <= held, config_where, ": describes a model of at least ", least, " parameters, but ",
        weights_where, " holds ", held,
        " (the config does not match the weights; check its sizes: layers, width, vocab)");
}

}  // namespace mmlearn
