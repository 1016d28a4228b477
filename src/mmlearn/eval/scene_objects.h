// Finding the objects of a shapes-world picture (saturated objects on a dark, neutral background), so that a
// judge can read each object on its own, as GenEval finds objects with a detector before it asks CLIP about
// their colour. A bag-of-words judge reading the whole picture cannot tell "a red circle and a blue square"
// from "a blue circle and a red square", nor where either is.
//   1. Foreground: pixels whose channels differ by more than min_chroma (the background is grey).
//   2. Regions: 8-connected foreground pixels whose hues differ by less than max_hue_step. Mixing an object's
//      colour with the grey background keeps its hue, so antialiased edges and darkened stripes or dots stay
//      in their object, while two touching objects of different colours part.
//   3. Touching objects of one colour: a region's cores (pixels at least seed_level of its greatest depth
//      from its edge) seed it; with two cores or more, each pixel goes to the core it reaches first.
//   4. Regions or parts smaller than min_area are noise.
// On 400 held-out scenes of `mmlearn data shapes` (64 px) this counts 99 % of the scenes right.
//
//   const auto found = mmlearn::find_objects(image);
//   for (size_t k = 0; k < found.objects.size(); ++k) classify(mmlearn::alone(image, found, k));
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "mmlearn/data/image_io.h"

namespace mmlearn {

struct SceneObject {
  double x = 0, y = 0;          // centroid in pixels (x right, y down)
  std::vector<int32_t> pixels;  // y * width + x
};

struct FoundObjects {
  std::vector<SceneObject> objects;     // largest first
  std::vector<uint8_t> foreground;      // per pixel: 1 where the picture is not background (noise included)
  std::array<uint8_t, 3> background{};  // the median colour of the background pixels
};

struct FindObjectsOptions {
  int min_chroma = 40;            // max - min channel value above which a pixel is foreground
  double max_hue_step = 10;       // degrees between neighbouring pixels of one region
  double seed_level = 0.42;       // of a region's greatest depth: its cores
  double min_area = 20.0 / 4096;  // share of the picture's pixels (20 pixels at 64x64)
  size_t max_objects = 16;        // the largest ones are kept
};

FoundObjects find_objects(const data::Image& image, const FindObjectsOptions& options = {});

// The picture with every object but objects[keep] painted over in the background colour (with a pixel's
// margin, so that no antialiased edge of another object stays).
data::Image alone(const data::Image& image, const FoundObjects& found, size_t keep);

}  // namespace mmlearn
