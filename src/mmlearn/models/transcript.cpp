#include "mmlearn/models/transcript.h"

#include <cmath>
#include <cstdio>

#include "mmlearn/core/error.h"
#include "mmlearn/text/unicode.h"

namespace mmlearn {

namespace {

// Subtitle text may not contain the cue arrow.
std::string cue_text(const std::string& caption) {
  std::string out = text::strip_ascii_space(caption);
  for (size_t pos; (pos = out.find("-->")) != std::string::npos;) out.replace(pos, 3, "->");
  return out;
}

}  // namespace

std::string format_timestamp(double seconds, bool always_include_hours, char decimal_marker) {
  check(seconds >= 0, "negative timestamp");
  auto ms = static_cast<int64_t>(std::nearbyint(seconds * 1000.0));
  const int64_t hours = ms / 3'600'000;
  ms -= hours * 3'600'000;
  const int64_t minutes = ms / 60'000;
  ms -= minutes * 60'000;
  const int64_t secs = ms / 1000;
  ms -= secs * 1000;
  char text[64];
  if (always_include_hours || hours > 0)
    std::snprintf(text, sizeof text, "%02lld:%02lld:%02lld%c%03lld", static_cast<long long>(hours),
                  static_cast<long long>(minutes), static_cast<long long>(secs), decimal_marker,
                  static_cast<long long>(ms));
  else
    std::snprintf(text, sizeof text, "%02lld:%02lld%c%03lld", static_cast<long long>(minutes),
                  static_cast<long long>(secs), decimal_marker, static_cast<long long>(ms));
  return text;
}

std::string to_txt(const Transcript& t) {
  std::string out;
  for (const auto& s : t.segments) out += text::strip_ascii_space(s.text) + "\n";
  return out;
}

std::string to_srt(const Transcript& t) {
  std::string out;
  int64_t n = 0;
  for (const auto& s : t.segments)
    out += std::to_string(++n) + "\n" + format_timestamp(s.start, true, ',') + " --> " +
           format_timestamp(s.end, true, ',') + "\n" + cue_text(s.text) + "\n\n";
  return out;
}

std::string to_vtt(const Transcript& t) {
  std::string out = "WEBVTT\n\n";
  for (const auto& s : t.segments)
    out += format_timestamp(s.start, false, '.') + " --> " + format_timestamp(s.end, false, '.') + "\n" +
           cue_text(s.text) + "\n\n";
  return out;
}

nlohmann::json to_json(const Transcript& t) {
  nlohmann::json segments = nlohmann::json::array();
  for (const auto& s : t.segments)
    segments.push_back({{"id", s.id},
                        {"seek", s.seek},
                        {"start", s.start},
                        {"end", s.end},
                        {"text", s.text},
                        {"tokens", s.tokens},
                        {"temperature", s.temperature},
                        {"avg_logprob", s.avg_logprob},
                        {"compression_ratio", s.compression_ratio},
                        {"no_speech_prob", s.no_speech_prob}});
  return {{"text", t.text}, {"segments", segments}, {"language", t.language}, {"duration", t.duration}};
}

std::string format_transcript(const Transcript& t, const std::string& format) {
  if (format == "txt") return to_txt(t);
  if (format == "json") return to_json(t).dump(2) + "\n";
  if (format == "srt") return to_srt(t);
  if (format == "vtt") return to_vtt(t);
  throw UsageError(str_cat("unknown transcript format \"", format, "\" (expected txt, json, srt or vtt)"));
}

}  // namespace mmlearn
