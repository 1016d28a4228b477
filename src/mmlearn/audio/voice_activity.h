// Where speech is in a recording, from its energy: the spans between pauses. A recording is split there
// before transcription (as WhisperX cuts at voice activity) so that each utterance is transcribed whole,
// within one window, and its time span comes from the audio itself rather than from timestamp tokens that a
// small model may not have learned.
//
//   auto spans = mmlearn::audio::speech_spans(samples, 16000);   // [{0.42, 2.91}, {3.80, 6.02}, ...] seconds
#pragma once

#include <vector>

namespace mmlearn::audio {

struct SpeechSpan {
  double start = 0, end = 0;  // seconds
};

struct VoiceActivityOptions {
  double frame_seconds = 0.03;      // RMS over frames of this length, every 10 ms
  double relative_threshold = 0.1;  // a frame is speech above this share of the loud frames' RMS (95th pct)
  double min_pause = 0.5;  // quieter stretches shorter than this (a comma's pause) stay inside an utterance
  // An utterance starts at its first sample above the noise floor (padding_before later), and ends `padding`
  // after its last loud frame. Recognizers trained on clips that start at the first sound (the shapes
  // recognizer) misread an utterance that starts with even 30 ms of silence.
  double padding_before = 0;
  double padding = 0.1;
  double max_span = 0;  // > 0: longer utterances are cut into pieces of at most this length
};

// The utterances of 16 kHz (or `sample_rate`) mono samples, in order; none for silence.
std::vector<SpeechSpan> speech_spans(const std::vector<float>& samples, int sample_rate,
                                     const VoiceActivityOptions& options = {});

}  // namespace mmlearn::audio
