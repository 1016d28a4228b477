// Turning an image file into the square uint8 RGB tensor a vision tower takes: decode (down-scaled while
// decoding, so huge files cost bounded memory), resize the shorter side to the model's size, centre crop.
// Normalisation to the model's mean/std happens in the model (Clip::normalize_pixels), so datasets stay
// uint8.
//
//   torch::Tensor img = mmlearn::load_image_tensor("cat.png", 224);   // uint8 [3, 224, 224]
#pragma once

#include <torch/types.h>

#include <filesystem>

#include "mmlearn/data/image_io.h"

namespace mmlearn {

// Resize shorter side to `size` (bilinear, antialiased) and centre crop to size x size. rgb: uint8 [H, W, 3].
torch::Tensor resize_center_crop(const data::Image& image, int64_t size);
torch::Tensor load_image_tensor(const std::filesystem::path& path, int64_t size,
                                const data::DecodeOptions& options = {});

}  // namespace mmlearn
