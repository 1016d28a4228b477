// Spoken-word search: recordings indexed by what is said in them. Each recording is cut at its pauses
// (audio/voice_activity.h) and every utterance transcribed by a speech recognizer; the utterances' texts go
// into an SQLite full-text index (FTS5) with their time spans. A text query finds the utterances that say its
// words, ranked by how much of the phrase they say in order (then BM25), and answers the recording with the
// time span where the words are said — the utterance's, narrowed to the words by their place in its text.
//
//   auto idx = mmlearn::search::TranscriptIndex::create("talks", "asr-run", "whisper");
//   idx.add("/data/talk1.wav", record, {{0.4, 2.9, "a large red star"}, ...});   // durable when it returns
//   auto hits = idx.search("red star", 10);   // hits[0].record["start"], ["end"]: seconds
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/search/embedding_index.h"

namespace mmlearn::search {

struct Utterance {
  double start = 0, end = 0;  // seconds
  std::string text;
};

// Where a phrase is said in an utterance: the share of the query's words said there in a row (1: the whole
// phrase), and the span of those words, estimated from their place in the utterance's text.
struct PhraseMatch {
  double score = 0;
  double start = 0, end = 0;
};
PhraseMatch match_phrase(const std::string& query, const Utterance& utterance);

class TranscriptIndex {
 public:
  static TranscriptIndex create(const std::filesystem::path& dir, const std::string& model,
                                const std::string& model_type);
  static TranscriptIndex open(const std::filesystem::path& dir);
  static bool exists(const std::filesystem::path& dir);

  TranscriptIndex(TranscriptIndex&&) noexcept;
  TranscriptIndex& operator=(TranscriptIndex&&) noexcept;
  ~TranscriptIndex();

  const std::filesystem::path& dir() const;
  // {"count" (recordings), "utterances", "model", "model_type", "modality": "audio", "kind": "transcript",
  // "dim": 0}
  nlohmann::json info() const;
  const std::string& model() const;
  bool contains(const std::string& key) const;
  // One recording and its utterances, in one transaction. A key already held is an Error.
  void add(const std::string& key, const nlohmann::json& record, const std::vector<Utterance>& utterances);
  int64_t remove(const std::vector<std::string>& keys);
  // The k best utterances for a text query; each hit's record is the recording's, with "start" and "end"
  // (the words' span, seconds), "transcript" (the utterance's text) and "utterance" ({"start", "end"}).
  std::vector<SearchHit> search(const std::string& query, int64_t k) const;

 private:
  struct State;
  explicit TranscriptIndex(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace mmlearn::search
