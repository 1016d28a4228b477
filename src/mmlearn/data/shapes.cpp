#include "mmlearn/data/shapes.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <thread>

#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/audio/speech_synth.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/charts.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/data/synthetic.h"

namespace mmlearn::data {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> names = {"circle", "square", "triangle", "diamond", "star"};
  return names;
}
const std::vector<std::string>& color_names() {
  static const std::vector<std::string> names = {"red", "green", "blue", "yellow", "purple", "orange"};
  return names;
}
const std::vector<std::string>& size_names() {
  static const std::vector<std::string> names = {"small", "large"};
  return names;
}
const std::vector<std::string>& texture_names() {
  static const std::vector<std::string> names = {"solid", "striped", "dotted"};
  return names;
}

namespace {

// Shape indices, matching shape_names().
enum ShapeKind { kCircle, kSquare, kTriangle, kDiamond, kStar };
enum TextureKind { kSolid, kStriped, kDotted };

// Base colours, matching color_names(): far apart in hue so that per-object jitter never makes one look like
// another (orange sits between red and yellow in green only, and keeps a wide margin to both).
constexpr std::array<std::array<double, 3>, 6> kPalette = {{
    {220, 40, 40},   // red
    {40, 190, 60},   // green
    {50, 90, 235},   // blue
    {235, 215, 40},  // yellow
    {150, 60, 200},  // purple
    {245, 135, 25},  // orange
}};

constexpr int kPngLevel = 3;  // images are regenerable: favour speed over a few percent of size
struct Object {
  int shape, color, size, texture;
  double cx, cy, radius;  // pixels; the image spans [0, S) on both axes
  std::array<double, 3> rgb;
  double dir_x, dir_y, period, phase_x, phase_y;  // texture pattern
};

struct Scene {
  std::vector<Object> objects;
  std::array<double, 3> background;
};

struct Point {
  double x, y;
};

// Unit-radius outlines (y down): the triangle points up, the star has five points up.
struct Outlines {
  std::array<Point, 3> triangle;
  std::array<Point, 10> star;
  Outlines() {
    const double pi = std::acos(-1.0);
    for (int k = 0; k < 3; ++k) {
      const double a = -pi / 2 + k * 2 * pi / 3;
      triangle[k] = {1.12 * std::cos(a), 1.12 * std::sin(a) + 0.1};  // shifted down: looks centred
    }
    for (int k = 0; k < 10; ++k) {
      const double a = -pi / 2 + k * pi / 5, r = k % 2 == 0 ? 1.1 : 0.48;
      star[k] = {r * std::cos(a), r * std::sin(a) + 0.05};
    }
  }
};

const Outlines& outlines() {
  static const Outlines instance;
  return instance;
}

// Even-odd rule; also correct for the concave star.
template <size_t N>
bool in_polygon(const std::array<Point, N>& p, double u, double v) {
  bool in = false;
  for (size_t i = 0, j = N - 1; i < N; j = i++) {
    if ((p[i].y > v) != (p[j].y > v) && u < (p[j].x - p[i].x) * (v - p[i].y) / (p[j].y - p[i].y) + p[i].x) {
      in = !in;
    }
  }
  return in;
}

bool inside(int shape, double u, double v) {
  switch (shape) {
    case kCircle:
      return u * u + v * v <= 1.0;
    case kSquare:
      return std::abs(u) <= 0.84 && std::abs(v) <= 0.84;  // similar area to the circle
    case kTriangle:
      return in_polygon(outlines().triangle, u, v);
    case kDiamond:
      return std::abs(u) + std::abs(v) <= 1.08;
    default:
      return in_polygon(outlines().star, u, v);
  }
}

// The pattern darkens the object's own colour, so that a textured object keeps its hue.
bool in_pattern(const Object& o, double dx, double dy) {
  if (o.texture == kStriped) {
    const double t = (dx * o.dir_x + dy * o.dir_y) / o.period + o.phase_x;
    return t - std::floor(t) < 0.5;
  }
  if (o.texture == kDotted) {
    const double gx = dx / o.period + o.phase_x, gy = dy / o.period + o.phase_y;
    const double fx = gx - std::floor(gx) - 0.5, fy = gy - std::floor(gy) - 0.5;
    return fx * fx + fy * fy < 0.25 * 0.25;
  }
  return false;
}

// Coverage from 4x4 samples per pixel gives antialiased edges; only the object's bounding box is visited.
void draw(const Object& o, int size, uint8_t* rgb) {
  constexpr double kReach = 1.12;  // no outline extends beyond this many radii from the centre
  const double extent = o.radius * kReach + 1;
  const int x0 = std::max(0, int(std::floor(o.cx - extent))), x1 = std::min(size - 1, int(o.cx + extent));
  const int y0 = std::max(0, int(std::floor(o.cy - extent))), y1 = std::min(size - 1, int(o.cy + extent));
  const double inv_r = 1.0 / o.radius, reach2 = (kReach + 1.0 * inv_r) * (kReach + 1.0 * inv_r);
  for (int py = y0; py <= y1; ++py) {
    for (int px = x0; px <= x1; ++px) {
      const double dx = px + 0.5 - o.cx, dy = py + 0.5 - o.cy;
      if ((dx * dx + dy * dy) * inv_r * inv_r > reach2) continue;
      int hits = 0;
      for (int sy = 0; sy < 4; ++sy) {
        const double v = (py + (sy + 0.5) / 4 - o.cy) * inv_r;
        for (int sx = 0; sx < 4; ++sx) hits += inside(o.shape, (px + (sx + 0.5) / 4 - o.cx) * inv_r, v);
      }
      if (hits == 0) continue;
      const double alpha = hits / 16.0, shade = in_pattern(o, dx, dy) ? 0.5 : 1.0;
      uint8_t* pixel = rgb + (size_t(py) * size + px) * 3;
      for (int c = 0; c < 3; ++c) {
        const double value = pixel[c] + (o.rgb[c] * shade - pixel[c]) * alpha;
        pixel[c] = uint8_t(std::clamp(value + 0.5, 0.0, 255.0));
      }
    }
  }
}

// The object's colour: the palette's, with a per-object brightness and jitter.
void set_color(Object& o, int color, Rng& rng) {
  o.color = color;
  const double brightness = rng.uniform(0.84, 1.08);
  for (int c = 0; c < 3; ++c)
    o.rgb[c] = std::clamp(kPalette[o.color][c] * brightness + rng.uniform(-12, 12), 0.0, 255.0);
}

void set_size(Object& o, int size_class, int image_size, Rng& rng) {
  o.size = size_class;
  o.radius = (o.size == 0 ? 0.11 : 0.2) * image_size * rng.uniform(0.94, 1.06);
}

// Patterns stay coarse enough on small objects that the silhouette still reads.
void set_period(Object& o) {
  o.period = o.texture == kDotted ? std::max(4.5, o.radius * 0.6) : std::max(3.0, o.radius * 0.5);
}

// An object of random attributes, not yet placed.
Object random_object(Rng& rng, int image_size) {
  Object o{};
  o.shape = rng.below(5);
  const int color = rng.below(6);
  const int size_class = rng.below(2);
  o.texture = rng.below(3);
  set_size(o, size_class, image_size, rng);
  set_color(o, color, rng);
  static constexpr double kDirections[4][2] = {
      {1, 0}, {0, 1}, {0.70710678, 0.70710678}, {0.70710678, -0.70710678}};
  const int dir = rng.below(4);
  o.dir_x = kDirections[dir][0];
  o.dir_y = kDirections[dir][1];
  set_period(o);
  o.phase_x = rng.uniform();
  o.phase_y = rng.uniform();
  return o;
}

// Whether `o` lies inside the image and at most touches the scene's other objects (all but `skip`).
bool fits(const Scene& scene, const Object& o, size_t skip, int image_size) {
  const double margin = o.radius * 1.1 + 1;
  if (o.cx < margin || o.cx > image_size - margin || o.cy < margin || o.cy > image_size - margin)
    return false;
  for (size_t j = 0; j < scene.objects.size(); ++j) {
    if (j == skip) continue;
    const Object& other = scene.objects[j];
    const double dx = o.cx - other.cx, dy = o.cy - other.cy, min_dist = 0.92 * (o.radius + other.radius);
    if (dx * dx + dy * dy < min_dist * min_dist) return false;
  }
  return true;
}

// Bounded rejection sampling of a centre for `o` where it fits beside the scene's objects (they at most
// touch).
bool place(const Scene& scene, Object& o, int size, Rng& rng) {
  const double margin = o.radius * 1.1 + 1;
  for (int attempt = 0; attempt < 64; ++attempt) {
    o.cx = rng.uniform(margin, size - margin);
    o.cy = rng.uniform(margin, size - margin);
    if (fits(scene, o, scene.objects.size(), size)) return true;
  }
  return false;
}

Scene make_scene(Rng& rng, int size, int max_objects) {
  Scene scene;
  // A dark neutral background with a mild per-image tone, so no object colour is ever the background.
  const double base = rng.uniform(28, 62);
  for (double& c : scene.background) c = base + rng.uniform(-6, 6);

  const int n = 1 + rng.below(max_objects);
  for (int i = 0; i < n; ++i) {
    // An object that finds no place is dropped (rare), and n_objects in the record says what was drawn.
    Object o = random_object(rng, size);
    if (place(scene, o, size, rng)) scene.objects.push_back(o);
  }
  return scene;
}

Image render(const Scene& scene, int size, Rng& rng) {
  Image image{size, size, std::vector<uint8_t>(size_t(size) * size * 3)};
  uint8_t* p = image.rgb.data();
  for (size_t i = 0; i < size_t(size) * size; ++i, p += 3) {
    const uint64_t noise = rng.next();  // 3 bytes of it: independent noise in [-6, 6] per channel
    for (int c = 0; c < 3; ++c) {
      const double value = scene.background[c] + double(int((noise >> (8 * c)) & 0xff) % 13 - 6);
      p[c] = uint8_t(std::clamp(value + 0.5, 0.0, 255.0));
    }
  }
  for (const Object& o : scene.objects) draw(o, size, image.rgb.data());
  return image;
}

// ---- Captions and questions

std::string with_article(const std::string& phrase) {
  const bool vowel = !phrase.empty() && std::string_view("aeiou").find(phrase[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + phrase;
}

// "small striped red circle"; the texture word only when asked for.
std::string describe(const Object& o, bool texture) {
  return str_cat(size_names()[o.size], " ", texture ? texture_names()[o.texture] + " " : "",
                 color_names()[o.color], " ", shape_names()[o.shape]);
}

// Where `a` is relative to `b`, along the axis where their centres differ most.
std::string relation(const Object& a, const Object& b, bool long_form) {
  const double dx = a.cx - b.cx, dy = a.cy - b.cy;
  if (std::abs(dx) >= std::abs(dy)) {
    const char* side = dx < 0 ? "left of" : "right of";
    return long_form ? str_cat("to the ", side) : side;
  }
  return dy < 0 ? "above" : "below";
}

std::string position_phrase(const Object& o, int size) {
  const double x = o.cx / size, y = o.cy / size;
  const int col = x < 1.0 / 3 ? 0 : x > 2.0 / 3 ? 2 : 1, row = y < 1.0 / 3 ? 0 : y > 2.0 / 3 ? 2 : 1;
  static const char* kPhrases[3][3] = {{"at the top left", "at the top", "at the top right"},
                                       {"on the left", "in the center", "on the right"},
                                       {"at the bottom left", "at the bottom", "at the bottom right"}};
  return kPhrases[row][col];
}

std::string caption(const Scene& scene, int size, Rng& rng) {
  std::vector<const Object*> order;
  for (const Object& o : scene.objects) order.push_back(&o);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[size_t(rng.below(int(i)))]);
  std::vector<std::string> parts;
  for (const Object* o : order) parts.push_back(with_article(describe(*o, rng.chance(0.25))));

  if (order.size() == 1) {
    const Object& o = *order[0];
    const std::string where = rng.chance(0.3) ? " " + position_phrase(o, size) : "";
    switch (rng.below(6)) {
      case 0:
        return parts[0] + where;
      case 1: {
        const bool texture = rng.chance(0.25);
        return str_cat(with_article(str_cat(texture ? texture_names()[o.texture] + " " : "",
                                            color_names()[o.color], " ", shape_names()[o.shape])),
                       " that is ", size_names()[o.size]);
      }
      case 2:
        return "there is " + parts[0] + where;
      case 3:
        return "a picture of " + parts[0] + where;
      case 4:
        return "a photo of " + parts[0] + where;
      default:
        return parts[0] + " on a dark background";
    }
  }
  if (order.size() == 2) {
    const std::string rel = relation(*order[0], *order[1], rng.chance(0.5));
    switch (rng.below(5)) {
      case 0:
        return str_cat(parts[0], " ", rel, " ", parts[1]);
      case 1:
        return str_cat("there is ", parts[0], " ", rel, " ", parts[1]);
      case 2:
        return str_cat(parts[0], " and ", parts[1]);
      case 3:
        return str_cat("a picture of ", parts[0], " and ", parts[1]);
      default:
        return str_cat("two objects: ", parts[0], " and ", parts[1]);
    }
  }
  const std::string list = str_cat(parts[0], ", ", parts[1], " and ", parts[2]);
  switch (rng.below(4)) {
    case 0:
      return list;
    case 1:
      return "there are " + list;
    case 2:
      return "a picture of " + list;
    default:
      return "three objects: " + list;
  }
}

struct Question {
  std::string question, answer, type;
};

// For each object in turn: "what color is the star?" when no other object is a star, and "what shape is the
// red object?" when no other object is red.
std::vector<Question> attribute_questions(const Scene& scene) {
  const auto& objects = scene.objects;
  auto count = [&](auto same) { return std::count_if(objects.begin(), objects.end(), same); };
  std::vector<Question> out;
  for (const Object& o : objects) {
    if (count([&](const Object& x) { return x.shape == o.shape; }) == 1)
      out.push_back(
          {str_cat("what color is the ", shape_names()[o.shape], "?"), color_names()[o.color], "color"});
    if (count([&](const Object& x) { return x.color == o.color; }) == 1)
      out.push_back({str_cat("what shape is the ", color_names()[o.color], " object?"),
                     shape_names()[o.shape], "shape"});
  }
  return out;
}

Json questions(const Scene& scene, Rng& rng) {
  const auto& objects = scene.objects;
  Json qa = Json::array();
  auto add = [&](std::string question, std::string answer) {
    qa.push_back(Json{{"question", std::move(question)}, {"answer", std::move(answer)}});
  };
  const auto attributes = attribute_questions(scene);
  for (const char* type : {"color", "shape"})  // the colour questions first
    for (const Question& q : attributes)
      if (q.type == type) add(q.question, q.answer);
  add("how many objects are there?", std::to_string(objects.size()));
  if (objects.size() == 2) {
    const int ref = rng.below(2);
    const Object &a = objects[size_t(1 - ref)], &b = objects[size_t(ref)];
    // Identical descriptions would make "the large blue square" ambiguous.
    if (describe(a, false) != describe(b, false)) {
      add(str_cat("what is ", relation(a, b, false), " the ", describe(b, false), "?"),
          with_article(describe(a, false)));
    }
  }
  return qa;
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

Json object_list(const Scene& scene, int size) {
  Json objects = Json::array();
  for (const Object& o : scene.objects) {
    objects.push_back(Json{{"shape", shape_names()[o.shape]},
                           {"color", color_names()[o.color]},
                           {"size", size_names()[o.size]},
                           {"texture", texture_names()[o.texture]},
                           {"x", round3(o.cx / size)},
                           {"y", round3(o.cy / size)}});
  }
  return objects;
}

// Renders record `index` of `split`, writes its PNG and returns its manifest line.
std::string make_record(const fs::path& out_dir, const ShapesConfig& config, const Split& split,
                        int64_t index) {
  Rng rng(record_seed(config.seed, split, index));
  const Scene scene = make_scene(rng, config.image_size, config.max_objects);
  const Image image = render(scene, config.image_size, rng);
  const std::string image_path = str_cat("images/", split.name, "/", index_name(index), ".png");
  const std::string png = encode_png(image, kPngLevel);
  { write_media(out_dir / image_path, png); }

  Json record;
  record["id"] = str_cat(split.name, "-", index_name(index));
  record["image"] = image_path;
  record["text"] = caption(scene, config.image_size, rng);
  if (config.audio) {
    // The caption spoken: voice, rate and pitch from a stream of their own, so that adding speech leaves
    // every other field as it was.
    Rng voice_rng(mix64(record_seed(config.seed, split, index) ^ 0x766f696365ULL));
    audio::Voice voice{
        .name = audio::speech_voices()[size_t(voice_rng.below(int(audio::speech_voices().size())))],
        .rate = 140 + voice_rng.below(61),
        .pitch = 30 + voice_rng.below(41)};
    const std::string audio_path = str_cat("audio/", split.name, "/", index_name(index), ".wav");
    const std::string wav = audio::encode_wav(audio::synthesize_speech(record["text"], voice), 16000);
    write_media(out_dir / audio_path, wav);
    record["audio"] = audio_path;
    record["voice"] = Json{{"name", voice.name}, {"rate", voice.rate}, {"pitch", voice.pitch}};
  }
  record["objects"] = object_list(scene, config.image_size);
  record["n_objects"] = scene.objects.size();
  if (scene.objects.size() == 1) {
    const Object& o = scene.objects[0];
    record["labels"] = Json{
        {"color", color_names()[o.color]}, {"shape", shape_names()[o.shape]}, {"size", size_names()[o.size]}};
  }
  record["qa"] = questions(scene, rng);
  return record.dump() + "\n";
}

// ---- Edits: (source scene, instruction, target scene) triplets for composed retrieval

// A name for object i that no other object in the scene answers to ("star", "red star", "small red star"),
// or "" when even the longest is shared.
std::string referent(const Scene& scene, size_t i) {
  const Object& o = scene.objects[i];
  auto unique = [&](auto same) {
    return std::count_if(scene.objects.begin(), scene.objects.end(), same) == 1;
  };
  if (unique([&](const Object& x) { return x.shape == o.shape; })) return shape_names()[o.shape];
  if (unique([&](const Object& x) { return x.shape == o.shape && x.color == o.color; }))
    return str_cat(color_names()[o.color], " ", shape_names()[o.shape]);
  if (unique([&](const Object& x) { return x.shape == o.shape && x.color == o.color && x.size == o.size; }))
    return describe(o, false);
  return "";
}

struct Edit {
  std::string kind, instruction;
  Scene target;
};

const std::vector<std::string>& edit_kinds() {
  static const std::vector<std::string> kinds = {"color", "shape", "size", "move", "remove", "add"};
  return kinds;
}

// One random edit of `source`, or nothing when the one drawn does not apply (no unique name for the object,
// no room to grow or move, nothing to remove, no room to add).
std::optional<Edit> random_edit(const Scene& source, int size, Rng& rng) {
  const std::string kind = edit_kinds()[size_t(rng.below(int(edit_kinds().size())))];
  const size_t i = size_t(rng.below(int(source.objects.size())));
  const std::string name = "the " + referent(source, i);
  auto pick = [&](std::initializer_list<std::string> phrasings) {
    return *(phrasings.begin() + rng.below(int(phrasings.size())));
  };
  Edit edit{kind, "", source};
  Object& o = edit.target.objects[i];
  if (kind != "add" && name == "the ") return std::nullopt;
  if (kind == "color") {
    set_color(o, (o.color + 1 + rng.below(5)) % 6, rng);
    const std::string& color = color_names()[o.color];
    edit.instruction = pick({str_cat("make ", name, " ", color), str_cat("change ", name, " to ", color),
                             str_cat("turn ", name, " ", color)});
  } else if (kind == "shape") {
    o.shape = (o.shape + 1 + rng.below(4)) % 5;
    const std::string shape = with_article(shape_names()[o.shape]);
    edit.instruction = pick({str_cat("make ", name, " ", shape), str_cat("turn ", name, " into ", shape),
                             str_cat("replace ", name, " with ", shape)});
  } else if (kind == "size") {
    set_size(o, 1 - o.size, size, rng);
    set_period(o);
    if (!fits(edit.target, o, i, size)) return std::nullopt;
    edit.instruction = o.size == 1
                           ? pick({str_cat("make ", name, " larger"), str_cat("make ", name, " bigger")})
                           : pick({str_cat("make ", name, " smaller"), str_cat("shrink ", name)});
  } else if (kind == "move") {
    static const char* kDirections[4] = {"left", "right", "up", "down"};
    const int d = rng.below(4);
    const double step = 0.25 * size;
    o.cx += d == 0 ? -step : d == 1 ? step : 0;
    o.cy += d == 2 ? -step : d == 3 ? step : 0;
    if (!fits(edit.target, o, i, size)) return std::nullopt;
    const std::string where = d < 2 ? str_cat("to the ", kDirections[d]) : kDirections[d];
    edit.instruction = pick({str_cat("move ", name, " ", kDirections[d]), str_cat("move ", name, " ", where),
                             str_cat("shift ", name, " ", kDirections[d])});
  } else if (kind == "remove") {
    if (source.objects.size() < 2) return std::nullopt;
    edit.target.objects.erase(edit.target.objects.begin() + std::ptrdiff_t(i));
    edit.instruction =
        pick({str_cat("remove ", name), str_cat("delete ", name), str_cat("take away ", name)});
  } else {  // add
    if (source.objects.size() >= 3) return std::nullopt;
    Object added = random_object(rng, size);
    if (!place(source, added, size, rng)) return std::nullopt;
    edit.target.objects.push_back(added);
    edit.instruction =
        pick({str_cat("add ", with_article(describe(added, false))),
              str_cat("add ",
                      with_article(str_cat(color_names()[added.color], " ", shape_names()[added.shape])))});
  }
  return edit;
}

// Triplet `index` of `split`: writes the source and target PNGs (the same background and noise) and returns
// its manifest line.
std::string make_edit_record(const fs::path& out_dir, const ShapesConfig& config, const Split& split,
                             int64_t index) {
  Rng rng(record_seed(config.seed, split, index) ^ 0x65646974ULL);
  const int size = config.image_size;
  // A scene with one object always takes a colour change, so this ends; the bound only guards the loop.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const Scene source = make_scene(rng, size, config.max_objects);
    for (int tries = 0; tries < 8; ++tries) {
      const std::optional<Edit> edit = random_edit(source, size, rng);
      if (!edit) continue;
      Rng noise = rng;  // the target differs from the source only where the edit says
      Rng target_noise = rng;
      const std::string stem = str_cat("images/", split.name, "/", index_name(index));
      write_media(out_dir / (stem + ".png"), encode_png(render(source, size, noise), kPngLevel));
      write_media(out_dir / (stem + "_target.png"),
                  encode_png(render(edit->target, size, target_noise), kPngLevel));
      Json record;
      record["id"] = str_cat(split.name, "-", index_name(index));
      record["image"] = stem + ".png";
      record["text"] = edit->instruction;
      record["target"] = stem + "_target.png";
      record["edit"] = edit->kind;
      record["objects"] = object_list(source, size);
      record["target_objects"] = object_list(edit->target, size);
      return record.dump() + "\n";
    }
  }
  throw Error(str_cat("shapes: no edit found for triplet ", index));
}

// ---- Visual question answering: one question a record, about a scene or a chart

// Questions about a scene, each with one right answer, by type: color, shape, count, spatial, existence.
std::vector<Question> scene_questions(const Scene& scene, Rng& rng) {
  const auto& objects = scene.objects;
  std::vector<Question> out = attribute_questions(scene);
  auto count = [&](auto same) { return std::count_if(objects.begin(), objects.end(), same); };
  out.push_back({"how many objects are there?", std::to_string(objects.size()), "count"});
  const int shape = rng.below(int(shape_names().size()));
  out.push_back({str_cat("how many ", shape_names()[shape], "s are there?"),
                 std::to_string(count([&](const Object& x) { return x.shape == shape; })), "count"});
  // "Is the square left of the circle?": two objects named by their shapes, along the axis where their
  // centres differ most, asked the right way round or the wrong way half the time each.
  if (objects.size() >= 2) {
    const size_t i = size_t(rng.below(int(objects.size())));
    const size_t j = (i + 1 + size_t(rng.below(int(objects.size()) - 1))) % objects.size();
    const Object &a = objects[i], &b = objects[j];
    if (a.shape != b.shape && count([&](const Object& x) { return x.shape == a.shape; }) == 1 &&
        count([&](const Object& x) { return x.shape == b.shape; }) == 1) {
      const std::string truth = relation(a, b, false);
      static const std::map<std::string, std::string> kOpposite = {
          {"left of", "right of"}, {"right of", "left of"}, {"above", "below"}, {"below", "above"}};
      const bool right_way = rng.chance(0.5);
      out.push_back({str_cat("is the ", shape_names()[a.shape], " ", right_way ? truth : kOpposite.at(truth),
                             " the ", shape_names()[b.shape], "?"),
                     right_way ? "yes" : "no", "spatial"});
    }
  }
  // "Is there a red circle?": an object of the scene, or a colour and shape it does not hold, half and half.
  if (rng.chance(0.5)) {
    const Object& o = objects[size_t(rng.below(int(objects.size())))];
    out.push_back({str_cat("is there ",
                           with_article(str_cat(color_names()[o.color], " ", shape_names()[o.shape])), "?"),
                   "yes", "existence"});
  } else {
    for (;;) {
      const int color = rng.below(int(color_names().size())), absent = rng.below(int(shape_names().size()));
      if (count([&](const Object& x) { return x.color == color && x.shape == absent; }) > 0) continue;
      out.push_back(
          {str_cat("is there ", with_article(str_cat(color_names()[color], " ", shape_names()[absent])), "?"),
           "no", "existence"});
      break;
    }
  }
  return out;
}

// Question `index` of `split`: a chart one time in three, else a scene; the question's type drawn first
// (uniformly among those the image allows), then one of that type. Writes the PNG, returns the line.
std::string make_vqa_record(const fs::path& out_dir, const ShapesConfig& config, const Split& split,
                            int64_t index) {
  Rng rng(record_seed(config.seed, split, index) ^ 0x767161ULL);
  const int size = config.image_size;
  const std::string image_path = str_cat("images/", split.name, "/", index_name(index), ".png");
  Json record;
  record["id"] = str_cat(split.name, "-", index_name(index));
  record["image"] = image_path;
  std::vector<Question> questions;
  // The caption draws from its own generator, so that the rest of the record is what it was without one.
  Rng caption_rng(mix64(record_seed(config.seed, split, index) ^ 0x63617074ULL));
  if (rng.below(3) == 0) {
    const Chart chart = random_chart(rng);
    write_media(out_dir / image_path, encode_png(render_chart(chart, size, rng), kPngLevel));
    for (const auto& q : chart_questions(chart, rng)) questions.push_back({q.question, q.answer, q.type});
    record["chart"] =
        Json{{"kind", chart.kind == Chart::Kind::bar ? "bar" : "line"}, {"values", chart.values}};
    record["text"] = chart_caption(chart);
  } else {
    const Scene scene = make_scene(rng, size, config.max_objects);
    write_media(out_dir / image_path, encode_png(render(scene, size, rng), kPngLevel));
    questions = scene_questions(scene, rng);
    record["objects"] = object_list(scene, size);
    record["text"] = caption(scene, size, caption_rng);
  }
  std::vector<std::string> types;
  for (const auto& q : questions)
    if (std::find(types.begin(), types.end(), q.type) == types.end()) types.push_back(q.type);
  const std::string type = types[size_t(rng.below(int(types.size())))];
  std::vector<const Question*> of_type;
  for (const auto& q : questions)
    if (q.type == type) of_type.push_back(&q);
  const Question& q = *of_type[size_t(rng.below(int(of_type.size())))];
  record["question"] = q.question;
  record["answer"] = q.answer;
  record["type"] = q.type;
  return record.dump() + "\n";
}

void generate_split(const fs::path& out_dir, const ShapesConfig& config, const Split& split, int64_t n,
                    int threads, const std::function<void(int64_t)>& on_written) {
  fs::create_directories(out_dir / "images" / split.name);
  if (config.audio) fs::create_directories(out_dir / "audio" / split.name);
  write_records(
      out_dir / str_cat(split.name, ".jsonl"), n, threads,
      [&](int64_t i) {
        switch (config.task) {
          case ShapesTask::edit:
            return make_edit_record(out_dir, config, split, i);
          case ShapesTask::vqa:
            return make_vqa_record(out_dir, config, split, i);
          case ShapesTask::scenes:
            break;
        }
        return make_record(out_dir, config, split, i);
      },
      on_written);
}

void validate(const ShapesConfig& config) {
  check(config.n_train >= 0, "shapes: n_train must be >= 0 (got ", config.n_train, ")");
  check(config.n_test >= 0, "shapes: n_test must be >= 0 (got ", config.n_test, ")");
  check(config.image_size >= 16 && config.image_size <= 1024,
        "shapes: image_size must be in [16, 1024] (got ", config.image_size, ")");
  check(config.max_objects >= 1 && config.max_objects <= 3, "shapes: max_objects must be in [1, 3] (got ",
        config.max_objects, ")");
  check(config.threads >= 0, "shapes: threads must be >= 0, 0 meaning all cores (got ", config.threads, ")");
  check(config.n_train + config.n_test <= 100'000'000, "shapes: n_train + n_test must be <= 100000000");
  check(!config.audio || config.task == ShapesTask::scenes,
        "shapes: only scenes have speech (leave out audio for edit triplets and questions)");
}

}  // namespace

ShapesSummary generate_shapes(const fs::path& out_dir, const ShapesConfig& config,
                              const std::function<void(int64_t done, int64_t total)>& progress) {
  validate(config);
  const auto start = std::chrono::steady_clock::now();
  const int threads =
      config.threads > 0 ? config.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t total = config.n_train + config.n_test;
  fs::create_directories(out_dir);

  generate_split(out_dir, config, kTrainSplit, config.n_train, threads, [&](int64_t done) {
    if (progress) progress(done, total);
  });
  generate_split(out_dir, config, kTestSplit, config.n_test, threads, [&](int64_t done) {
    if (progress) progress(config.n_train + done, total);
  });

  Json classes;
  classes["template"] = "a {size} {color} {shape}";
  classes["attributes"] = Json{{"color", color_names()}, {"shape", shape_names()}, {"size", size_names()}};
  write_file_atomic(out_dir / "classes.json", classes.dump(2) + "\n");

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {total, seconds};
}

}  // namespace mmlearn::data
