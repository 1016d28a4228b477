#include "mmlearn/data/mood.h"

#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <thread>

#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/audio/speech_synth.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/data/synthetic.h"

namespace mmlearn::data {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const std::vector<std::string>& mood_labels() {
  static const std::vector<std::string> names = {"negative", "neutral", "positive"};
  return names;
}
const std::vector<std::string>& mood_expressions() {
  static const std::vector<std::string> names = {"smile", "frown", "deadpan", "eye-roll"};
  return names;
}
const std::vector<std::string>& mood_words() {
  static const std::vector<std::string> names = {"positive", "negative", "neutral"};
  return names;
}

namespace {

enum Label { kNegative, kNeutral, kPositive };
enum Expression { kSmile, kFrown, kDeadpan, kEyeRoll };
enum Words { kPositiveWords, kNegativeWords, kNeutralWords };

// How often each occurs: deadpan and eye-roll faces are common, so that most records need both modalities.
constexpr std::array<double, 4> kExpressionP = {0.15, 0.15, 0.35, 0.35};
constexpr std::array<double, 3> kWordsP = {0.35, 0.35, 0.30};

template <size_t N>
int draw_from(Rng& rng, const std::array<double, N>& p) {
  double u = rng.uniform();
  for (size_t i = 0; i + 1 < N; ++i) {
    if (u < p[i]) return int(i);
    u -= p[i];
  }
  return int(N - 1);
}

// ---- Faces

struct Pixel {
  double x, y;
};

// Paints the pixels of [x0, x1] x [y0, y1] covered by `inside` in `rgb`, with 4x4 samples a pixel for
// antialiased edges.
template <typename Inside>
void paint(Image& image, double x0, double x1, double y0, double y1, const std::array<double, 3>& rgb,
           Inside inside) {
  const int S = image.width;
  for (int py = std::max(0, int(y0) - 1); py <= std::min(S - 1, int(y1) + 1); ++py) {
    for (int px = std::max(0, int(x0) - 1); px <= std::min(S - 1, int(x1) + 1); ++px) {
      int hits = 0;
      for (int sy = 0; sy < 4; ++sy)
        for (int sx = 0; sx < 4; ++sx) hits += inside(Pixel{px + (sx + 0.5) / 4, py + (sy + 0.5) / 4});
      if (hits == 0) continue;
      uint8_t* p = image.rgb.data() + (size_t(py) * S + px) * 3;
      for (int c = 0; c < 3; ++c)
        p[c] = uint8_t(std::clamp(p[c] + (rgb[c] - p[c]) * hits / 16.0 + 0.5, 0.0, 255.0));
    }
  }
}

std::array<double, 3> jitter(Rng& rng, std::array<double, 3> rgb, double amount) {
  for (double& c : rgb) c = std::clamp(c + rng.uniform(-amount, amount), 0.0, 255.0);
  return rgb;
}

Image draw_face(int expression, int S, Rng& rng) {
  Image image{S, S, std::vector<uint8_t>(size_t(S) * S * 3), {}};
  const double base = rng.uniform(30, 90);
  const std::array<double, 3> background = jitter(rng, {base, base, base}, 25);
  for (size_t i = 0; i < size_t(S) * S; ++i)
    for (int c = 0; c < 3; ++c)
      image.rgb[i * 3 + c] = uint8_t(std::clamp(background[c] + rng.uniform(-6, 6) + 0.5, 0.0, 255.0));

  static constexpr std::array<std::array<double, 3>, 6> kSkin = {
      {{241, 194, 125}, {224, 172, 105}, {198, 134, 66}, {141, 85, 36}, {255, 219, 172}, {250, 220, 90}}};
  const double cx = S * rng.uniform(0.44, 0.56), cy = S * rng.uniform(0.45, 0.55),
               r = S * rng.uniform(0.34, 0.42);
  paint(image, cx - r, cx + r, cy - r, cy + r, jitter(rng, kSkin[size_t(rng.below(6))], 10),
        [&](Pixel p) { return (p.x - cx) * (p.x - cx) + (p.y - cy) * (p.y - cy) <= r * r; });

  // Eyes: white discs with dark pupils; rolled eyes look up, their pupils cut off by the top of the eye.
  const double ey = cy - r * rng.uniform(0.18, 0.26), spread = r * rng.uniform(0.30, 0.40);
  const double er = r * rng.uniform(0.14, 0.18), pr = er * rng.uniform(0.5, 0.6);
  const double pdx = er * rng.uniform(-0.25, 0.25);
  const double pdy = expression == kEyeRoll ? -er * rng.uniform(0.5, 0.65) : er * rng.uniform(-0.1, 0.25);
  for (double side : {-1.0, 1.0}) {
    const double ex = cx + side * spread;
    auto in_eye = [=](Pixel p) { return (p.x - ex) * (p.x - ex) + (p.y - ey) * (p.y - ey) <= er * er; };
    paint(image, ex - er, ex + er, ey - er, ey + er, {245, 245, 245}, in_eye);
    const double px = ex + pdx, py = ey + pdy;
    paint(image, ex - er, ex + er, ey - er, ey + er, {25, 25, 35},
          [=](Pixel p) { return in_eye(p) && (p.x - px) * (p.x - px) + (p.y - py) * (p.y - py) <= pr * pr; });
  }

  // Mouth: a stroke along y(t), t in [-1, 1] across its width. A smile's corners are up (smaller y), a
  // frown's down; deadpan is level; the eye-roll's smirk tilts to one side.
  const double my = cy + r * rng.uniform(0.38, 0.48), w = r * rng.uniform(0.38, 0.5);
  const double amplitude = r * rng.uniform(0.18, 0.28),
               thickness = std::max(1.2, r * rng.uniform(0.08, 0.11));
  const double tilt = (rng.chance(0.5) ? 1 : -1) * r * rng.uniform(0.10, 0.16),
               wobble = r * rng.uniform(-0.03, 0.03);
  auto mouth_y = [=](double t) {
    switch (expression) {
      case kSmile:
        return my + amplitude * (0.5 - t * t);
      case kFrown:
        return my - amplitude * (0.5 - t * t);
      case kDeadpan:
        return my + wobble * t;
      default:
        return my + tilt * t;
    }
  };
  paint(image, cx - w, cx + w, my - amplitude - thickness, my + amplitude + thickness, {110, 30, 35},
        [=](Pixel p) {
          const double t = (p.x - cx) / w;
          return std::abs(t) <= 1 && std::abs(p.y - mouth_y(t)) <= thickness / 2;
        });
  return image;
}

// ---- Sentences

const std::vector<std::string>& things() {
  static const std::vector<std::string> names = {"meeting", "weather", "movie",  "traffic", "dinner", "exam",
                                                 "party",   "weekend", "train",  "coffee",  "report", "game",
                                                 "concert", "haircut", "flight", "homework"};
  return names;
}

std::string sentence(int words, Rng& rng) {
  static const std::array<std::vector<std::string>, 3> kTemplates = {{
      {"i love this {}", "what a great {}", "this {} is wonderful", "best {} ever",
       "i'm so happy about the {}", "the {} turned out amazing", "oh, the {} is perfect",
       "wow, what a fantastic {}", "i really enjoyed the {}", "the {} made my day"},
      {"i hate this {}", "what an awful {}", "this {} is terrible", "worst {} ever", "i'm so tired of the {}",
       "the {} was a disaster", "oh, the {} is ruined", "ugh, what a miserable {}", "i really regret the {}",
       "the {} ruined my day"},
      {"the {} is at noon", "i saw the {} today", "the {} is on tuesday", "we talked about the {}",
       "the {} was moved to friday", "here is the {}", "they announced the {}", "i read about the {}",
       "the {} starts soon", "the {} was yesterday"},
  }};
  static const std::array<const char*, 4> kEndings = {"", ".", "!", "..."};
  const auto& templates = kTemplates[size_t(words)];
  std::string text = templates[size_t(rng.below(int(templates.size())))];
  text.replace(text.find("{}"), 2, things()[size_t(rng.below(int(things().size())))]);
  return text + kEndings[size_t(rng.below(4))];
}

struct Latent {
  int expression, words;
};

Latent draw_latent(Rng& rng) { return {draw_from(rng, kExpressionP), draw_from(rng, kWordsP)}; }

std::string make_record(const fs::path& out_dir, const MoodConfig& config, const Split& split, int64_t index,
                        std::vector<Latent>& latents) {
  Rng rng(record_seed(config.seed, split, index));
  const Latent latent = draw_latent(rng);
  latents[size_t(index)] = latent;
  const std::string image_path = str_cat("images/", split.name, "/", index_name(index), ".png");
  write_media(out_dir / image_path, encode_png(draw_face(latent.expression, config.image_size, rng), 3));
  Json record;
  record["id"] = str_cat("mood-", split.name, "-", index_name(index));
  record["image"] = image_path;
  record["text"] = sentence(latent.words, rng);
  if (config.audio) {
    // Sarcasm is drawn out and low; sincere speech has an ordinary rate and pitch. Its own stream, so that
    // adding speech leaves every other field as it was.
    Rng voice_rng(mix64(record_seed(config.seed, split, index) ^ 0x766f696365ULL));
    const bool sarcastic = latent.expression == kEyeRoll;
    audio::Voice voice{
        .name = audio::speech_voices()[size_t(voice_rng.below(int(audio::speech_voices().size())))],
        .rate = sarcastic ? 95 + voice_rng.below(26) : 155 + voice_rng.below(46),
        .pitch = sarcastic ? 5 + voice_rng.below(16) : 45 + voice_rng.below(36)};
    const std::string audio_path = str_cat("audio/", split.name, "/", index_name(index), ".wav");
    write_media(out_dir / audio_path,
                audio::encode_wav(audio::synthesize_speech(record["text"], voice), 16000));
    record["audio"] = audio_path;
    record["voice"] = Json{{"name", voice.name}, {"rate", voice.rate}, {"pitch", voice.pitch}};
  }
  record["label"] = mood_labels()[size_t(mood_label(latent.expression, latent.words))];
  record["expression"] = mood_expressions()[size_t(latent.expression)];
  record["words"] = mood_words()[size_t(latent.words)];
  return record.dump() + "\n";
}

// What a modality shows of the latent: the face its expression; the text its words; the voice its words
// and whether they are meant.
int observed(const std::string& modality, const Latent& l) {
  if (modality == "image") return l.expression;
  if (modality == "text") return l.words;
  return l.words * 2 + (l.expression == kEyeRoll);
}

// The best accuracy of any predictor that sees only `modality`: for each thing it can see, the most
// frequent label among the (weighted) cases that look so.
double ceiling(const std::string& modality, const std::vector<std::pair<Latent, double>>& cases) {
  std::map<int, std::array<double, 3>> mass;
  double total = 0;
  for (const auto& [latent, weight] : cases) {
    mass[observed(modality, latent)][size_t(mood_label(latent.expression, latent.words))] += weight;
    total += weight;
  }
  double best = 0;
  for (const auto& [seen, by_label] : mass) best += *std::max_element(by_label.begin(), by_label.end());
  return total > 0 ? best / total : 0.0;
}

Json ceilings(const std::vector<std::string>& modalities,
              const std::vector<std::pair<Latent, double>>& cases) {
  Json out;
  for (const auto& m : modalities) out[m] = std::round(ceiling(m, cases) * 1e4) / 1e4;
  return out;
}

}  // namespace

int mood_label(int expression, int words) {
  check(expression >= 0 && expression < 4 && words >= 0 && words < 3, "mood_label: index out of range");
  // Rows: expression; columns: positive, negative, neutral words (the table in mood.h).
  static constexpr int kTable[4][3] = {{kPositive, kPositive, kPositive},
                                       {kNegative, kNegative, kNegative},
                                       {kPositive, kNegative, kNeutral},
                                       {kNegative, kPositive, kNegative}};
  return kTable[expression][words];
}

MoodSummary generate_mood(const fs::path& out_dir, const MoodConfig& config,
                          const std::function<void(int64_t, int64_t)>& progress) {
  check(config.n_train >= 0 && config.n_test >= 0, "mood: record counts must be >= 0");
  check(config.n_train + config.n_test <= 10'000'000, "mood: n_train + n_test must be <= 10000000");
  check(config.image_size >= 24 && config.image_size <= 512, "mood: image_size must be in [24, 512] (got ",
        config.image_size, ")");
  check(config.threads >= 0, "mood: threads must be >= 0, 0 meaning all cores");
  const auto start = std::chrono::steady_clock::now();
  const int threads =
      config.threads > 0 ? config.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t total = config.n_train + config.n_test;
  std::vector<std::string> modalities = {"image", "text"};
  if (config.audio) modalities.push_back("audio");

  Json summary;
  summary["task"] = "mood";
  summary["labels"] = mood_labels();
  summary["modalities"] = modalities;
  std::vector<std::pair<Latent, double>> population;
  for (int e = 0; e < 4; ++e)
    for (int w = 0; w < 3; ++w) population.push_back({{e, w}, kExpressionP[size_t(e)] * kWordsP[size_t(w)]});
  summary["ceiling"] = ceilings(modalities, population);
  summary["fused_ceiling"] = 1.0;

  int64_t done_before = 0;
  for (const Split* split : {&kTrainSplit, &kTestSplit}) {
    const int64_t n = split == &kTrainSplit ? config.n_train : config.n_test;
    fs::create_directories(out_dir / "images" / split->name);
    if (config.audio) fs::create_directories(out_dir / "audio" / split->name);
    std::vector<Latent> latents(size_t(n), Latent{});
    write_records(
        out_dir / str_cat(split->name, ".jsonl"), n, threads,
        [&](int64_t i) { return make_record(out_dir, config, *split, i, latents); },
        [&](int64_t done) {
          if (progress) progress(done_before + done, total);
        });
    done_before += n;
    std::vector<std::pair<Latent, double>> cases;
    for (const Latent& l : latents) cases.push_back({l, 1.0});
    summary["splits"][split->name] = ceilings(modalities, cases);
  }
  summary["note"] =
      "ceiling: the best accuracy of any predictor that sees only what one modality shows of the label's "
      "inputs (the face's expression; the words' polarity; the voice's words and sarcasm), for the "
      "generating "
      "distribution and, under splits, on each split's records";
  write_file_atomic(out_dir / "ceiling.json", summary.dump(2) + "\n");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {total, seconds, nlohmann::json::parse(summary.dump())};
}

}  // namespace mmlearn::data
