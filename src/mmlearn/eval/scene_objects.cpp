#include "mmlearn/eval/scene_objects.h"

#include <algorithm>
#include <cmath>
#include <deque>

#include "mmlearn/core/error.h"

namespace mmlearn {
namespace {

constexpr int kNeighbours[8][2] = {{-1, -1}, {0, -1}, {1, -1}, {-1, 0}, {1, 0}, {-1, 1}, {0, 1}, {1, 1}};

double hue_of(const uint8_t* p) {
  const double r = p[0], g = p[1], b = p[2];
  const double hi = std::max({r, g, b}), lo = std::min({r, g, b}), c = std::max(hi - lo, 1e-6);
  double h = hi == r ? std::fmod((g - b) / c + 6, 6) : hi == g ? (b - r) / c + 2 : (r - g) / c + 4;
  return 60 * h;
}

double hue_distance(double a, double b) {
  const double d = std::fabs(a - b);
  return std::min(d, 360 - d);
}

// Labels (0, 1, ...; -1 elsewhere) of the 8-connected groups of `member` pixels that `joins` links.
template <class Member, class Joins>
int label(int w, int h, std::vector<int32_t>& labels, Member member, Joins joins) {
  labels.assign(size_t(w) * h, -1);
  int n = 0;
  std::deque<int32_t> queue;
  for (int32_t start = 0; start < w * h; ++start) {
    if (!member(start) || labels[size_t(start)] >= 0) continue;
    labels[size_t(start)] = n;
    queue.push_back(start);
    while (!queue.empty()) {
      const int32_t i = queue.front();
      queue.pop_front();
      const int x = i % w, y = i / w;
      for (const auto& d : kNeighbours) {
        const int nx = x + d[0], ny = y + d[1];
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const int32_t j = ny * w + nx;
        if (labels[size_t(j)] < 0 && member(j) && joins(i, j)) {
          labels[size_t(j)] = n;
          queue.push_back(j);
        }
      }
    }
    ++n;
  }
  return n;
}

// Each region's pixels split at its cores (step 3 of the header), or whole when it has one core.
std::vector<std::vector<int32_t>> split_at_cores(int w, int h, const std::vector<int32_t>& region_of,
                                                 const std::vector<int32_t>& pixels, double seed_level) {
  const int32_t region = region_of[size_t(pixels[0])];
  auto inside = [&](int x, int y) {
    return x >= 0 && y >= 0 && x < w && y < h && region_of[size_t(y * w + x)] == region;
  };
  // Depth: 4-connected steps to the region's edge (1 on the edge).
  std::vector<int32_t> depth(size_t(w) * h, 0);
  std::deque<int32_t> queue;
  for (const int32_t i : pixels) {
    const int x = i % w, y = i / w;
    if (!inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1)) {
      depth[size_t(i)] = 1;
      queue.push_back(i);
    }
  }
  int32_t deepest = 1;
  while (!queue.empty()) {
    const int32_t i = queue.front();
    queue.pop_front();
    const int x = i % w, y = i / w;
    deepest = std::max(deepest, depth[size_t(i)]);
    for (const auto& d : {std::array{1, 0}, std::array{-1, 0}, std::array{0, 1}, std::array{0, -1}}) {
      const int nx = x + d[0], ny = y + d[1];
      if (!inside(nx, ny) || depth[size_t(ny * w + nx)] != 0) continue;
      depth[size_t(ny * w + nx)] = depth[size_t(i)] + 1;
      queue.push_back(ny * w + nx);
    }
  }
  std::vector<int32_t> core;
  const int cores = label(
      w, h, core,
      [&](int32_t i) { return region_of[size_t(i)] == region && depth[size_t(i)] >= seed_level * deepest; },
      [](int32_t, int32_t) { return true; });
  if (cores <= 1) return {pixels};
  // Grow the cores through the region, breadth first: each pixel joins the core that reaches it first.
  for (const int32_t i : pixels)
    if (core[size_t(i)] >= 0) queue.push_back(i);
  while (!queue.empty()) {
    const int32_t i = queue.front();
    queue.pop_front();
    const int x = i % w, y = i / w;
    for (const auto& d : kNeighbours) {
      const int nx = x + d[0], ny = y + d[1];
      if (!inside(nx, ny) || core[size_t(ny * w + nx)] >= 0) continue;
      core[size_t(ny * w + nx)] = core[size_t(i)];
      queue.push_back(ny * w + nx);
    }
  }
  std::vector<std::vector<int32_t>> parts(static_cast<size_t>(cores));
  for (const int32_t i : pixels) parts[size_t(core[size_t(i)])].push_back(i);
  return parts;
}

}  // namespace

FoundObjects find_objects(const data::Image& image, const FindObjectsOptions& o) {
  const int w = image.width, h = image.height;
  check(w > 0 && h > 0 && image.rgb.size() == size_t(w) * h * 3, "find_objects: not an RGB image");
  const size_t n = size_t(w) * h;
  FoundObjects found;
  found.foreground.assign(n, 0);
  std::vector<double> hue(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &image.rgb[i * 3];
    found.foreground[i] = std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]}) > o.min_chroma;
    if (found.foreground[i]) hue[i] = hue_of(p);
  }
  // The background's colour: the median of each channel over the other pixels (grey when there are none).
  for (int c = 0; c < 3; ++c) {
    std::array<int64_t, 256> histogram{};
    int64_t total = 0;
    for (size_t i = 0; i < n; ++i)
      if (!found.foreground[i]) ++histogram[image.rgb[i * 3 + size_t(c)]], ++total;
    int64_t seen = 0;
    int value = 0;
    while (total > 0 && value < 255 && (seen += histogram[size_t(value)]) * 2 < total) ++value;
    found.background[size_t(c)] = total > 0 ? uint8_t(value) : uint8_t(40);
  }

  std::vector<int32_t> region_of;
  const int regions = label(
      w, h, region_of, [&](int32_t i) { return found.foreground[size_t(i)] != 0; },
      [&](int32_t i, int32_t j) { return hue_distance(hue[size_t(i)], hue[size_t(j)]) < o.max_hue_step; });
  std::vector<std::vector<int32_t>> pixels_of(static_cast<size_t>(regions));
  for (size_t i = 0; i < n; ++i)
    if (region_of[i] >= 0) pixels_of[size_t(region_of[i])].push_back(int32_t(i));
  const size_t min_pixels = std::max<size_t>(1, size_t(std::lround(o.min_area * double(n))));
  for (const auto& pixels : pixels_of) {
    if (pixels.size() < min_pixels) continue;
    for (auto& part : split_at_cores(w, h, region_of, pixels, o.seed_level)) {
      if (part.size() < min_pixels) continue;
      SceneObject object;
      for (const int32_t i : part) object.x += i % w + 0.5, object.y += i / w + 0.5;
      object.x /= double(part.size()), object.y /= double(part.size());
      object.pixels = std::move(part);
      found.objects.push_back(std::move(object));
    }
  }
  std::stable_sort(
      found.objects.begin(), found.objects.end(),
      [](const SceneObject& a, const SceneObject& b) { return a.pixels.size() > b.pixels.size(); });
  if (found.objects.size() > o.max_objects) found.objects.resize(o.max_objects);
  return found;
}

data::Image alone(const data::Image& image, const FoundObjects& found, size_t keep) {
  check(keep < found.objects.size(), "alone: no object ", keep);
  const int w = image.width, h = image.height;
  auto grown = [&](const std::vector<uint8_t>& mask) {  // the mask and its 8 neighbours
    std::vector<uint8_t> out(mask);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        if (mask[size_t(y * w + x)])
          for (const auto& d : kNeighbours) {
            const int nx = x + d[0], ny = y + d[1];
            if (nx >= 0 && ny >= 0 && nx < w && ny < h) out[size_t(ny * w + nx)] = 1;
          }
    return out;
  };
  std::vector<uint8_t> kept(size_t(w) * h, 0);
  for (const int32_t i : found.objects[keep].pixels) kept[size_t(i)] = 1;
  kept = grown(kept);
  const std::vector<uint8_t> covered = grown(found.foreground);
  data::Image out = image;
  for (size_t i = 0; i < kept.size(); ++i)
    if (covered[i] && !kept[i])
      for (size_t c = 0; c < 3; ++c) out.rgb[i * 3 + c] = found.background[c];
  return out;
}

}  // namespace mmlearn
