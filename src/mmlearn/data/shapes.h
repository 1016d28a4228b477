// "shapes": the synthetic image-text world that ships with mmlearn, small enough to train a CLIP-style model
// on CPU in minutes. Each scene holds 1..max_objects objects (shape x colour x size x texture) drawn with
// antialiased edges on a dark, noisy background; each record pairs the image with a caption from a small
// grammar with paraphrases, the object list, class labels (single-object scenes) and question/answer pairs.
//
// Layout written under out_dir:
//   train.jsonl, test.jsonl     one record per line: id, image, text, objects, n_objects, [labels], qa
//   images/train/000000.png     paths in records are relative to the manifest
//   audio/train/000000.wav      with audio: the caption spoken (record fields "audio" and "voice")
//   classes.json                {"template": "a {size} {color} {shape}", "attributes": {...}} for zero-shot
// With task = edit, each record is an edit of a scene for composed retrieval: "image" the source scene,
// "text" the instruction (a colour, shape or size change, a move, a removal, an addition: "make the circle
// red", "move the star left", "remove the square"), "target" the scene it asks for (images/train/000000_
// target.png: the same background, noise and other objects), "edit" its kind, "objects" and "target_objects".
// With task = vqa, each record is one question about an image: "question", "answer" (text), "type" (color,
// shape, count, spatial, existence about scenes; chart_value, chart_extreme, chart_compare, chart_trend about
// bar and line charts, data/charts.h, a third of the records), "objects" or "chart" ({"kind", "values"}),
// and "text": the image's caption (a scene's, or the chart's values: "a bar chart: A is 3, B is 7").
//
// Output is a pure function of the config (seed, sizes): byte-identical across runs and thread counts.
//
//   mmlearn::data::ShapesConfig config{.n_train = 2000, .n_test = 200, .seed = 7};
//   auto summary = mmlearn::data::generate_shapes("data/shapes", config, [](int64_t done, int64_t total) {
//     std::fprintf(stderr, "\r%lld/%lld records", (long long)done, (long long)total);
//   });
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace mmlearn::data {

enum class ShapesTask {
  scenes,  // one scene a record, with caption, objects, labels and Q&A
  edit,    // (source scene, instruction, target scene) triplets: "make the circle red", "remove the square"
  vqa,     // one question a record about a scene or a chart, with its answer and type
};

struct ShapesConfig {
  int64_t n_train = 10000, n_test = 1000;
  uint64_t seed = 0;
  int image_size = 64;  // side in pixels, [16, 1024]
  int max_objects = 3;  // [1, 3]; the count per scene is uniform in [1, max_objects]
  int threads = 0;      // 0 = hardware concurrency; never changes the output
  bool audio = false;   // also the caption spoken (espeak-ng, several voices, rates and pitches), 16 kHz WAV
  ShapesTask task = ShapesTask::scenes;
};

struct ShapesSummary {
  int64_t records;  // train + test
  double seconds;
};

// Generates the dataset into out_dir (created if missing). Manifests and classes.json are written atomically;
// images are plain files (they are regenerable). `progress` is called on the calling thread.
// Throws mmlearn::Error on an invalid config or an IO failure.
ShapesSummary generate_shapes(const std::filesystem::path& out_dir, const ShapesConfig& config,
                              const std::function<void(int64_t done, int64_t total)>& progress = {});

// The vocabulary, in the order used by classes.json (evaluation builds prompts from it).
const std::vector<std::string>& shape_names();    // circle, square, triangle, diamond, star
const std::vector<std::string>& color_names();    // red, green, blue, yellow, purple, orange
const std::vector<std::string>& size_names();     // small, large
const std::vector<std::string>& texture_names();  // solid, striped, dotted

}  // namespace mmlearn::data
