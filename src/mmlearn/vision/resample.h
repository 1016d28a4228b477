// PIL's Image.resize bit for bit, and the centre crops of torchvision and Hugging Face: the geometric half of
// reference CLIP preprocessing (vision/clip_preprocess.h), without torch.
//
// Pillow resizes 8-bit images by a separable convolution, horizontal pass then vertical, each pass rounded
// and clipped to 8 bits, with weights in 22-bit fixed point and the filter's support widened by the downscale
// factor (antialiasing). This follows Pillow's src/libImaging/Resample.c (precompute_coeffs,
// normalize_coeffs_8bpc, ImagingResample{Horizontal,Vertical}_8bpc), Geometry.c (nearest neighbour) and
// Image.resize's rules per mode; tests/vision/test_clip_preprocess.cpp checks the bytes against Pillow.
//
//   using namespace mmlearn::vision;
//   data::Image resized = resize(image, 298, 224);                                  // PIL's BICUBIC
//   data::Image square = center_crop(resized, 224, 224, CropRounding::torchvision);
#pragma once

#include "mmlearn/data/image_io.h"

namespace mmlearn::vision {

// PIL's resampling filters, numbered as PIL numbers them (Image.Resampling), as configs give them
// (Hugging Face's "resample": 3 is bicubic).
enum class Filter { nearest = 0, lanczos = 1, bilinear = 2, bicubic = 3, box = 4, hamming = 5 };

// A rectangle in pixel coordinates; it may reach outside the image it refers to.
struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
};

// The pixels in `window` of PIL's Image.resize((width, height), filter) applied to `image` as PIL holds it:
// an Image::indexed image is resized with nearest neighbour whatever `filter` says (PIL's modes "P" and "1"),
// one with Image::alpha premultiplied by it (modes "RGBA" and "LA"; the result keeps its alpha); equal sizes
// copy. Only the window is computed, so time and memory follow the window and the source rows it reads, not
// the whole resized image. Window pixels outside the resized image are black (and transparent).
data::Image resize_window(const data::Image& image, int width, int height, Filter filter, Rect window);

// PIL's Image.resize((width, height), filter).
data::Image resize(const data::Image& image, int width, int height, Filter filter = Filter::bicubic);

// How a centre crop places itself when the image is larger than the crop, and the image when it is smaller
// (padded with black).
enum class CropRounding {
  // torchvision's center_crop: starts at int(round((size - crop) / 2.0)), Python's round() taking halves to
  // even (1.5 -> 2, 2.5 -> 2); a smaller image gets (crop - size) // 2 pixels of padding before it.
  torchvision,
  // Hugging Face's image_transforms.center_crop: starts at (size - crop) // 2; a smaller image gets
  // ceil((crop - size) / 2) pixels of padding before it.
  hf,
};

// Where a centre crop of `crop` pixels starts along an axis of `size` pixels; negative when it pads.
int center_crop_start(int size, int crop, CropRounding rounding);

// The centred width x height window of `image`, black where the image is smaller; alpha is cropped alike.
data::Image center_crop(const data::Image& image, int width, int height, CropRounding rounding);

}  // namespace mmlearn::vision
