// Finding a shapes picture's objects: on scenes the data generator drew, the count and the centres are the
// record's; an object alone keeps its pixels and loses its neighbours; an empty picture holds none.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/eval/scene_objects.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct Scene {
  data::Image image;
  json record;
};

std::vector<Scene> scenes(const fs::path& dir, int64_t n) {
  data::generate_shapes(dir, {.n_train = 1, .n_test = n, .seed = 3, .threads = 1});
  std::vector<Scene> out;
  std::ifstream in(dir / "test.jsonl");
  for (std::string line; std::getline(in, line);) {
    json r = json::parse(line);
    out.push_back({data::read_image(dir / r["image"].get<std::string>()), std::move(r)});
  }
  return out;
}

TEST(SceneObjects, CountsAndPlacesTheObjectsOfTheDataGeneratorsScenes) {
  const auto all = scenes(test::temp_dir("scenes"), 300);
  int64_t counted = 0, placed = 0, two = 0;
  for (const Scene& s : all) {
    const FoundObjects found = find_objects(s.image);
    const auto& objects = s.record["objects"];
    if (found.objects.size() != objects.size()) continue;
    ++counted;
    // Every true centre has a found centroid within 4 % of the side (triangles and stars sit off-centre).
    bool all_near = true;
    for (const auto& o : objects) {
      double nearest = 1e9;
      for (const SceneObject& f : found.objects)
        nearest =
            std::min(nearest, std::hypot(f.x / 64 - o["x"].get<double>(), f.y / 64 - o["y"].get<double>()));
      all_near = all_near && nearest < 0.04;
    }
    placed += all_near;
    two += objects.size() == 2;
  }
  EXPECT_GE(counted, 0.97 * all.size());  // the misses: touching objects of one colour and odd shapes
  EXPECT_EQ(placed, counted);
  EXPECT_GT(two, 50);
}

TEST(SceneObjects, AnObjectAloneKeepsItsPixelsAndLosesItsNeighbours) {
  for (const Scene& s : scenes(test::temp_dir("scenes"), 40)) {
    const FoundObjects found = find_objects(s.image);
    if (found.objects.size() < 2) continue;
    const data::Image one = alone(s.image, found, 1);
    const FoundObjects again = find_objects(one);
    ASSERT_EQ(again.objects.size(), 1u) << s.record["image"];
    EXPECT_EQ(again.objects[0].pixels, found.objects[1].pixels);
    for (const int32_t i : found.objects[0].pixels)
      for (size_t c = 0; c < 3; ++c) EXPECT_EQ(one.rgb[size_t(i) * 3 + c], found.background[c]);
    return;
  }
  FAIL() << "no scene with two objects";
}

TEST(SceneObjects, AGreyPictureHoldsNoneAndNoiseIsNotAnObject) {
  data::Image grey{32, 32, std::vector<uint8_t>(32 * 32 * 3, 50)};
  EXPECT_TRUE(find_objects(grey).objects.empty());
  // Three saturated pixels: below the least area of an object.
  for (int i : {5, 6, 40}) grey.rgb[size_t(i) * 3] = 250;
  EXPECT_TRUE(find_objects(grey).objects.empty());
  EXPECT_EQ(find_objects(grey).foreground[5], 1);
  EXPECT_THROW(find_objects(data::Image{4, 4, {}}), Error);
}

}  // namespace
}  // namespace mmlearn
