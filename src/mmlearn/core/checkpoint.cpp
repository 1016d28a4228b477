#include "mmlearn/core/checkpoint.h"

#include "mmlearn/core/error.h"

namespace mmlearn {

TensorMap parameter_map(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.key()] = b.value();
  return out;
}

namespace {

bool optional_key(const std::string& name) {
  const std::string counter = "num_batches_tracked";
  return name.size() >= counter.size() &&
         name.compare(name.size() - counter.size(), counter.size(), counter) == 0;
}

}  // namespace

void save_parameters(const torch::nn::Module& module, const std::filesystem::path& path,
                     const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, parameter_map(module), metadata);
}

void load_parameters(torch::nn::Module& module, const std::filesystem::path& path) {
  load_parameters(module, load_safetensors(path), path.string());
}

void load_parameters(torch::nn::Module& module, const TensorMap& tensors, const std::string& where) {
  const TensorMap params = parameter_map(module);
  std::string missing;
  for (const auto& [name, t] : params)
    if (!tensors.count(name) && !optional_key(name)) missing += (missing.empty() ? "" : ", ") + name;
  check(missing.empty(), where, ": missing tensors: ", missing,
        " (the file does not match this architecture)");
  for (const auto& [name, t] : tensors)
    check(params.count(name), where, ": unexpected tensor \"", name, "\" (not a parameter of this model)");
  torch::NoGradGuard no_grad;
  for (const auto& [name, dst] : params) {
    auto it = tensors.find(name);
    if (it == tensors.end()) continue;  // an optional counter
    const torch::Tensor& src = it->second;
    check(src.sizes() == dst.sizes(), where, ": tensor \"", name, "\" has shape ", src.sizes(),
          " but the model expects ", dst.sizes());
    check(src.is_floating_point() == dst.is_floating_point(), where, ": tensor \"", name, "\" has dtype ",
          src.scalar_type(), " but the model expects ", dst.scalar_type());
    dst.copy_(src);
  }
}

}  // namespace mmlearn
