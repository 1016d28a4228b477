// A diffusers model folder — config.json beside diffusion_pytorch_model.safetensors — as diffusers'
// save_pretrained writes one for each part of a pipeline (vae/, unet/). mmlearn reads and writes the same
// layout, so its generator's parts and diffusers' open alike.
//
//   nlohmann::json config = mmlearn::read_diffusers_config("model/unet");
//   mmlearn::load_diffusers_weights(*unet, "model/unet");
#pragma once

#include <torch/nn/module.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace mmlearn {

inline constexpr const char* kDiffusersWeights = "diffusion_pytorch_model.safetensors";

nlohmann::json read_diffusers_config(const std::filesystem::path& dir);  // errors name the file
// Every parameter from the folder's weights, shapes checked (core/checkpoint.h).
void load_diffusers_weights(torch::nn::Module& module, const std::filesystem::path& dir);
// config.json and the weights, each written atomically.
void save_diffusers_folder(const torch::nn::Module& module, const nlohmann::json& config,
                           const std::filesystem::path& dir);

}  // namespace mmlearn
