#include "mmlearn/core/checkpoint.h"

#include "mmlearn/core/error.h"

namespace mmlearn {

TensorMap parameter_map(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  return out;
}

void save_parameters(const torch::nn::Module& module, const std::filesystem::path& path,
                     const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, parameter_map(module), metadata);
}

void load_parameters(torch::nn::Module& module, const std::filesystem::path& path) {
  load_parameters(module, load_safetensors(path), path.string());
}

void load_parameters(torch::nn::Module& module, const TensorMap& tensors, const std::string& where) {
  auto params = module.named_parameters(/*recurse=*/true);
  std::string missing;
  for (const auto& p : params)
    if (!tensors.count(p.key())) missing += (missing.empty() ? "" : ", ") + p.key();
  check(missing.empty(), where, ": missing tensors: ", missing,
        " (the file does not match this architecture)");
  for (const auto& [name, t] : tensors)
    check(params.contains(name), where, ": unexpected tensor \"", name, "\" (not a parameter of this model)");
  torch::NoGradGuard no_grad;
  for (const auto& p : params) {
    const torch::Tensor& src = tensors.at(p.key());
    check(src.sizes() == p.value().sizes(), where, ": tensor \"", p.key(), "\" has shape ", src.sizes(),
          " but the model expects ", p.value().sizes());
    check(src.is_floating_point(), where, ": tensor \"", p.key(), "\" has non-float dtype ",
          src.scalar_type());
    p.value().copy_(src);
  }
}

}  // namespace mmlearn
