#include "mmlearn/models/clip_pixels.h"

#include "mmlearn/vision/image_processor.h"

namespace mmlearn {

vision::ImagePreprocess clip_image_preprocess(const ClipConfig& c) {
  vision::ImagePreprocess p;
  p.family = c.image_preprocess == "hf" ? vision::ImagePreprocess::Family::hf
                                        : vision::ImagePreprocess::Family::openai;
  const int size = static_cast<int>(c.vision.image_size);
  p.resize_shortest = c.resize_shortest > 0 ? static_cast<int>(c.resize_shortest) : size;
  p.crop_width = p.crop_height = size;
  for (int k = 0; k < 3; ++k) {
    p.mean[k] = static_cast<float>(c.image_mean[k]);
    p.std_dev[k] = static_cast<float>(c.image_std[k]);
  }
  return p;
}

torch::Tensor load_clip_pixels(const ClipConfig& c, const std::filesystem::path& image, int64_t max_pixels) {
  if (c.image_preprocess == "mmlearn") {
    auto u8 = load_image_tensor(image, c.vision.image_size, {.max_pixels = max_pixels});
    return normalize_pixels(c, u8.unsqueeze(0)).squeeze(0);
  }
  return load_reference_pixels(clip_image_preprocess(c), image, max_pixels);
}

torch::Tensor load_reference_pixels(const vision::ImagePreprocess& preprocess,
                                    const std::filesystem::path& image, int64_t max_pixels) {
  vision::PixelTensor x =
      vision::preprocess(data::read_image(image, {.max_pixels = max_pixels, .pil = true}), preprocess);
  return torch::from_blob(x.chw.data(), {3, x.height, x.width}, torch::kFloat32).clone();
}

}  // namespace mmlearn
