// CLIP image preprocessing computed exactly as the reference implementations compute it, so a pretrained
// checkpoint sees the pixel values it was trained and evaluated on: OpenAI CLIP / OpenCLIP (torchvision
// transforms on PIL images) and Hugging Face's CLIPImageProcessor. No torch: the result is float32 [3, H, W].
//
// Exactness needs the image as PIL holds it, so decode with DecodeOptions::pil (full size; max_pixels still
// applies). Not reproduced, all rare: torchvision pads a palette image with palette entry 0 rather than black
// (only when the crop exceeds the resized image), and resizes CMYK JPEGs and 16-bit grey PNGs in PIL modes
// "CMYK" and "I" before converting them to RGB, where mmlearn converts first.
//
//   using namespace mmlearn;
//   data::Image image = data::read_image("cat.jpg", {.pil = true});
//   vision::PixelTensor x = vision::preprocess(std::move(image), vision::ImagePreprocess{});  // OpenAI, 224
//   auto hf = vision::read_hf_preprocessor_config("clip-vit-base-patch32/preprocessor_config.json");
#pragma once

#include <array>
#include <filesystem>
#include <vector>

#include "mmlearn/data/image_io.h"
#include "mmlearn/vision/resample.h"

namespace mmlearn::vision {

// One model's preprocessing. The defaults are OpenAI CLIP at 224 pixels.
struct ImagePreprocess {
  // Which reference to reproduce: they order the steps and round differently.
  enum class Family {
    // OpenAI CLIP and OpenCLIP: torchvision Resize and CenterCrop on the PIL image as decoded (so palette
    // images are resized with nearest neighbour, RGBA premultiplied), then convert("RGB"), ToTensor (x / 255
    // in float32) and Normalize ((x - mean) / std in float32). Crop: CropRounding::torchvision.
    openai,
    // Hugging Face CLIPImageProcessor: convert("RGB") first, then PIL resize, center_crop (CropRounding::hf),
    // rescale (x * rescale_factor in float64, stored as float32) and normalize in float32.
    hf,
  };
  Family family = Family::openai;
  // Resize so that the shorter side is resize_shortest and the longer int(resize_shortest * long / short)
  // (torchvision's and HF's rule); if it is 0, to resize_width x resize_height (HF's "size": {"height",
  // "width"}); if all are 0, not at all.
  int resize_shortest = 224;
  int resize_width = 0, resize_height = 0;
  Filter filter = Filter::bicubic;
  // Centre crop, padding with black where the resized image is smaller; 0 x 0: no crop.
  int crop_width = 224, crop_height = 224;
  // Family::hf only (1 for HF's do_rescale false): torchvision's ToTensor always divides by 255.
  double rescale_factor = 1.0 / 255;
  // (x - mean) / std_dev per RGB channel; mean 0 and std_dev 1 leave x unchanged (HF's do_normalize false).
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std_dev{0.26862954f, 0.26130258f, 0.27577711f};
};

// Float pixels, channel-major: chw[(c * height + y) * width + x].
struct PixelTensor {
  int width = 0, height = 0;
  std::vector<float> chw;
};

// Resizes, crops, converts and normalises `image` as `config.family` does. Only the cropped window of the
// resized image is computed, so memory follows the crop, whatever the image's aspect ratio.
PixelTensor preprocess(data::Image image, const ImagePreprocess& config);

// Reads a Hugging Face preprocessor_config.json for CLIPImageProcessor or BlipImageProcessor (whose defaults
// are 384 x 384 without a crop, and whose integer size is a square): do_resize, size (an integer,
// {"shortest_edge"} or {"height", "width"}), resample (PIL's numbers), do_center_crop, crop_size (an
// integer or {"height", "width"}), do_rescale, rescale_factor, do_normalize, image_mean, image_std (3
// numbers, or one for all channels); missing fields take CLIPImageProcessor's defaults. do_convert_rgb is not
// read: without it HF feeds non-RGB images on unconverted, which only works for RGB ones, and for those it
// changes nothing.
// Throws mmlearn::Error naming the file and the field for a bad value, and for other processor types.
ImagePreprocess read_hf_preprocessor_config(const std::filesystem::path& path);

}  // namespace mmlearn::vision
