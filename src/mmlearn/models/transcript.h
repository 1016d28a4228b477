// A transcript: timed segments of text, and the formats people read them in — plain text, JSON for
// scripts, SRT and WebVTT subtitles (as Whisper's writers lay them out).
//
//   std::string srt = mmlearn::to_srt(transcript);
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn {

struct TranscriptSegment {
  int64_t id = 0;
  int64_t seek = 0;  // the window's first mel frame
  double start = 0, end = 0;
  std::string text;
  std::vector<int64_t> tokens;
  double temperature = 0, avg_logprob = 0, compression_ratio = 0, no_speech_prob = 0;
};

struct Transcript {
  std::string text;
  std::vector<TranscriptSegment> segments;
  std::string language;
  double duration = 0;  // seconds of audio
};

// "HH:MM:SS,mmm" (always_include_hours) or "MM:SS.mmm", as Whisper's format_timestamp.
std::string format_timestamp(double seconds, bool always_include_hours, char decimal_marker);
std::string to_txt(const Transcript& t);
std::string to_srt(const Transcript& t);
std::string to_vtt(const Transcript& t);
nlohmann::json to_json(const Transcript& t);
// "txt" | "json" | "srt" | "vtt"
std::string format_transcript(const Transcript& t, const std::string& format);

}  // namespace mmlearn
