// An image file -> the normalized pixels a CLIP model takes, prepared the way its weights expect
// (ClipConfig::image_preprocess): mmlearn's own models as training prepared them; pretrained OpenAI/OpenCLIP
// and Hugging Face models exactly as their reference pipelines do (vision/clip_preprocess.h).
//
//   torch::Tensor x = mmlearn::load_clip_pixels(clip.model->config, "cat.jpg");  // float [3, S, S]
#pragma once

#include <torch/types.h>

#include <filesystem>

#include "mmlearn/models/clip.h"
#include "mmlearn/vision/clip_preprocess.h"

namespace mmlearn {

// The exact pipeline of an "openai" or "hf" model: resize the shorter side, centre crop to image_size,
// normalize with the config's mean and std.
vision::ImagePreprocess clip_image_preprocess(const ClipConfig& config);

torch::Tensor load_clip_pixels(const ClipConfig& config, const std::filesystem::path& image,
                               int64_t max_pixels = 1'000'000'000);

// An image file decoded as PIL holds it and prepared by `preprocess` (any reference pipeline: CLIP's,
// BLIP's): float [3, H, W].
torch::Tensor load_reference_pixels(const vision::ImagePreprocess& preprocess,
                                    const std::filesystem::path& image, int64_t max_pixels = 1'000'000'000);

}  // namespace mmlearn
