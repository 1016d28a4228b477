// A persistent search index of embedded items (images, audio clips, texts), kept in one folder:
//   index.sqlite   the truth: every item's key, record and embedding, and what the index is (model, modality,
//                  kind, dimension, the model's probe embedding); each add or remove is one transaction, so
//                  an acknowledged change survives a crash and an interrupted one leaves no trace;
//   vectors.faiss  the vector index of exactly those items: a cache, written at save(), checked against the
//                  database (generation, size, checksum) when opened and rebuilt from it when stale or
//                  damaged.
//
//   auto idx = mmlearn::search::EmbeddingIndex::create("idx", info, probe);
//   idx.add({{"/data/images/0001.png", record}}, embeddings);   // durable when it returns
//   idx.save();                                                  // vectors.faiss of the current items
//   auto hits = mmlearn::search::EmbeddingIndex::open("idx").search(query, 1, 10);
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/search/vector_index.h"

namespace mmlearn::search {

// What an index is: `index info --json` prints it.
struct IndexInfo {
  std::string model;       // the model directory or file it was built with, as given
  std::string model_type;  // its family ("clip", "clap")
  std::string modality;    // what the items are: "image", "audio" or "text"
  IndexKind kind = IndexKind::flat;
  int64_t dim = 0;
  int64_t count = 0;  // items held
  int64_t lists = 0;  // an ivf or ivfpq index's inverted lists, once trained
};
nlohmann::json to_json(const IndexInfo& info);

struct IndexItem {
  std::string key;  // unique in the index: the media file's path, or the text itself
  nlohmann::json record;
};

struct SearchHit {
  int64_t id = 0;
  float score = 0;
  std::string key;
  nlohmann::json record;
};
nlohmann::json to_json(const SearchHit& hit);  // {"id", "score", "key", "record"}

class EmbeddingIndex {
 public:
  // A new index in `dir` (which must not hold one). `probe` is the model's embedding of a fixed text: a query
  // embedded by another model is refused by comparing it (check_probe).
  static EmbeddingIndex create(const std::filesystem::path& dir, const IndexInfo& info,
                               const std::vector<float>& probe);
  // Errors name the folder and say what is wrong with it.
  static EmbeddingIndex open(const std::filesystem::path& dir);
  static bool exists(const std::filesystem::path& dir);

  EmbeddingIndex(EmbeddingIndex&&) noexcept;
  EmbeddingIndex& operator=(EmbeddingIndex&&) noexcept;
  ~EmbeddingIndex();

  const std::filesystem::path& dir() const;
  IndexInfo info() const;
  // An Error unless `probe` is (to rounding) the one the index was built with; `model` names it in the
  // message.
  void check_probe(const std::vector<float>& probe, const std::string& model) const;
  bool contains(const std::string& key) const;

  // Adds items, row i of `embeddings` ([items.size(), dim], L2-normalized) for item i, in one transaction:
  // when it returns they are on disk. A key already held is an Error (and nothing is added).
  void add(const std::vector<IndexItem>& items, const float* embeddings);
  // Removes the items with these keys, in one transaction; returns how many were held.
  int64_t remove(const std::vector<std::string>& keys);
  // The k nearest items of each of n queries ([n, dim]).
  std::vector<std::vector<SearchHit>> search(const float* queries, int64_t n, int64_t k) const;
  // Writes vectors.faiss for the items now held (atomically), unless it is already current.
  void save();

 private:
  struct State;
  explicit EmbeddingIndex(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace mmlearn::search
