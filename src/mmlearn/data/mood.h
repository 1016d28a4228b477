// "mood": the shapes world's multimodal sentiment task. Each record is a drawn face, a sentence and, with
// audio, the sentence spoken; its label (negative, neutral, positive) depends on the modalities jointly:
//
//   face expression   words: positive   negative   neutral
//   smile                    positive   positive   positive    the face shows the mood outright
//   frown                    negative   negative   negative
//   deadpan                  positive   negative   neutral     the words carry it
//   eye-roll                 negative   positive   negative    sarcasm: the words mean their opposite
//
// Spoken, a sarcastic sentence (eye-roll) is drawn out slowly at a low pitch, the others at an ordinary rate
// and pitch: the voice carries the words and whether they are meant, not the smile or the frown.
// So no single modality can be right on every record; the best any predictor that sees one modality can do
// is computed exactly, for the distribution and for each split, and written to ceiling.json.
//
// Layout written under out_dir:
//   train.jsonl, test.jsonl   id, image, text, label, expression, words, [audio, voice]
//   images/train/000000.png   faces, image_size pixels square
//   audio/train/000000.wav    with audio: 16 kHz WAV
//   ceiling.json              {"labels", "modalities", "ceiling": {modality: accuracy}, "splits": {...}}
//
// Output is a pure function of the config: byte-identical across runs and thread counts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn::data {

struct MoodConfig {
  int64_t n_train = 4000, n_test = 500;
  uint64_t seed = 0;
  int image_size = 48;  // [24, 512]
  int threads = 0;      // 0 = hardware concurrency; never changes the output
  bool audio = false;   // also the sentence spoken, with the prosody described above
};

struct MoodSummary {
  int64_t records;
  double seconds;
  nlohmann::json ceiling;  // what ceiling.json holds
};

// Generates the data set into out_dir (created if missing); manifests and ceiling.json are written
// atomically. Throws mmlearn::Error on an invalid config or an IO failure.
MoodSummary generate_mood(const std::filesystem::path& out_dir, const MoodConfig& config,
                          const std::function<void(int64_t done, int64_t total)>& progress = {});

const std::vector<std::string>& mood_labels();       // negative, neutral, positive
const std::vector<std::string>& mood_expressions();  // smile, frown, deadpan, eye-roll
const std::vector<std::string>& mood_words();        // positive, negative, neutral
// The table above, by index into those lists.
int mood_label(int expression, int words);

}  // namespace mmlearn::data
