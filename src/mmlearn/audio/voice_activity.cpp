#include "mmlearn/audio/voice_activity.h"

#include <algorithm>
#include <cmath>

namespace mmlearn::audio {

std::vector<SpeechSpan> speech_spans(const std::vector<float>& samples, int sample_rate,
                                     const VoiceActivityOptions& o) {
  const auto hop = static_cast<size_t>(sample_rate / 100);
  const auto frame = static_cast<size_t>(o.frame_seconds * sample_rate);
  if (samples.size() < frame || hop == 0) return {};
  std::vector<double> rms;
  for (size_t at = 0; at + frame <= samples.size(); at += hop) {
    double sum = 0;
    for (size_t i = at; i < at + frame; ++i) sum += double(samples[i]) * samples[i];
    rms.push_back(std::sqrt(sum / double(frame)));
  }
  std::vector<double> sorted = rms;
  const auto loud_at = sorted.begin() + std::ptrdiff_t(0.95 * double(sorted.size() - 1));
  std::nth_element(sorted.begin(), loud_at, sorted.end());
  const double threshold = std::max(*loud_at * o.relative_threshold, 1e-4);  // 1e-4: digital silence

  const double seconds_per_frame = double(hop) / sample_rate, duration = double(samples.size()) / sample_rate;
  std::vector<SpeechSpan> spans;
  for (size_t i = 0; i < rms.size();) {
    if (rms[i] < threshold) {
      ++i;
      continue;
    }
    size_t last = i;  // the last loud frame of this utterance
    for (size_t j = i + 1; j < rms.size() && double(j - last) * seconds_per_frame < o.min_pause; ++j)
      if (rms[j] >= threshold) last = j;
    // The onset to the sample: back from the first loud frame to the start of the sound (10 ms below the
    // noise floor end it), or on to its first sample above the floor.
    const double floor = std::max(threshold * 0.05, 3e-4);
    size_t onset = i * hop;
    while (onset < i * hop + frame && std::abs(samples[onset]) < floor) ++onset;
    for (size_t j = onset, quiet = 0; j > 0 && quiet < hop; --j) {
      if (std::abs(samples[j - 1]) < floor) {
        ++quiet;
      } else {
        quiet = 0;
        onset = j - 1;
      }
    }
    const double start = std::max(0.0, double(onset) / sample_rate - o.padding_before);
    const double end = std::min(duration, double(last) * seconds_per_frame + o.frame_seconds + o.padding);
    if (!spans.empty() && start <= spans.back().end)
      spans.back().end = end;  // the paddings meet: one utterance
    else
      spans.push_back({start, end});
    i = last + 1;
  }
  if (o.max_span <= 0) return spans;
  std::vector<SpeechSpan> cut;
  for (const auto& s : spans)
    for (double t = s.start; t < s.end; t += o.max_span) cut.push_back({t, std::min(s.end, t + o.max_span)});
  return cut;
}

}  // namespace mmlearn::audio
