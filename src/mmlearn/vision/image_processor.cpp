#include "mmlearn/vision/image_processor.h"

#include <torch/nn/functional.h>

#include <cmath>

namespace mmlearn {

torch::Tensor resize_center_crop(const data::Image& image, int64_t size) {
  auto hwc =
      torch::from_blob(const_cast<uint8_t*>(image.rgb.data()), {image.height, image.width, 3}, torch::kUInt8);
  auto chw = hwc.permute({2, 0, 1});
  if (image.width == size && image.height == size) return chw.contiguous().clone();
  const double scale = static_cast<double>(size) / std::min(image.width, image.height);
  const int64_t h = std::max<int64_t>(size, std::lround(image.height * scale));
  const int64_t w = std::max<int64_t>(size, std::lround(image.width * scale));
  auto x = chw.unsqueeze(0).to(torch::kFloat32);
  if (h != image.height || w != image.width) {
    namespace F = torch::nn::functional;
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{h, w})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(true));
  }
  const int64_t top = (h - size) / 2, left = (w - size) / 2;
  x = x.slice(2, top, top + size).slice(3, left, left + size);
  return x.round().clamp(0, 255).to(torch::kUInt8).squeeze(0).contiguous();
}

torch::Tensor load_image_tensor(const std::filesystem::path& path, int64_t size,
                                const data::DecodeOptions& options) {
  data::DecodeOptions decode = options;
  decode.max_side = static_cast<int>(size);
  return resize_center_crop(data::read_image(path, decode), size);
}

}  // namespace mmlearn
