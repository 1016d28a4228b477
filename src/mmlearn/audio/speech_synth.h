// Spoken text from espeak-ng, for the synthetic worlds: a caption read by one of several voices at a given
// rate and pitch, resampled to 16 kHz mono. Each utterance is spoken by a fresh espeak-ng (in a forked
// process), so speech is a pure function of text and voice and a dataset with speech is byte-identical
// across runs and thread counts.
//
//   mmlearn::audio::Voice voice{.name = "en-us+f3", .rate = 160, .pitch = 60};
//   std::vector<float> speech = mmlearn::audio::synthesize_speech("a small red circle", voice);
#pragma once

#include <string>
#include <vector>

namespace mmlearn::audio {

struct Voice {
  std::string name = "en-us";  // espeak-ng voice, optionally with a variant: "en-us+f3", "en+m1"
  int rate = 175;              // words per minute, 80..450
  int pitch = 50;              // 0..100
};

// The voices the shapes world speaks with.
const std::vector<std::string>& speech_voices();

// Mono samples in [-1, 1) at `sample_rate`. Throws mmlearn::Error when espeak-ng or the voice is missing.
std::vector<float> synthesize_speech(const std::string& text, const Voice& voice, int sample_rate = 16000);

}  // namespace mmlearn::audio
