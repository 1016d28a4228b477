// Nearest neighbours of L2-normalized embeddings by inner product (cosine similarity), on FAISS: exact
// (`flat`, every vector scored), or approximate for large collections — `hnsw` (a navigable small-world
// graph, 32 links a node), `ivf` (inverted lists: vectors grouped around k-means centroids, only the lists
// nearest a query scanned) or `ivfpq` (the same lists holding product-quantized codes, 1/16 of the memory).
// The two IVF kinds learn their lists from the vectors they hold. Only this file's implementation includes
// FAISS.
//
//   auto v = mmlearn::search::VectorIndex(mmlearn::search::IndexKind::flat, 512);
//   v.add({7, 9}, rows);                         // ids and float [2, 512], row-major
//   auto hits = v.search(query, 1, 10);          // per query: (id, score), best first
//   std::string bytes = v.serialize();          // and VectorIndex::deserialize(bytes, kind, dim)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mmlearn::search {

enum class IndexKind { flat, hnsw, ivf, ivfpq };
IndexKind parse_index_kind(const std::string& name);  // a UsageError names the choices
std::string index_kind_name(IndexKind kind);
bool has_lists(IndexKind kind);  // ivf and ivfpq: inverted lists, learned from the vectors held

struct Hit {
  int64_t id = -1;
  float score = 0;  // inner product: cosine similarity of normalized vectors
};

class VectorIndex {
 public:
  VectorIndex(IndexKind kind, int64_t dim);
  VectorIndex(VectorIndex&&) noexcept;
  VectorIndex& operator=(VectorIndex&&) noexcept;
  ~VectorIndex();

  IndexKind kind() const { return kind_; }
  int64_t dim() const { return dim_; }
  int64_t size() const;

  // Adds `ids.size()` rows of `vectors` (row-major, dim() floats each). An IVF index trains on its first
  // add, which must then hold at least min_training_vectors().
  void add(const std::vector<int64_t>& ids, const float* vectors);
  int64_t min_training_vectors() const;
  // Whether an IVF index about to hold n vectors should be trained on them afresh (by its owner, into a new
  // index): it is not trained yet, or its lists were learned for a collection a quarter the size or less.
  bool needs_training(int64_t n) const;
  int64_t lists() const;  // an IVF index's inverted lists; 0 for other kinds and before training
  // Whether remove() works here; an HNSW graph cannot drop nodes, so its owner rebuilds it instead.
  bool can_remove() const { return kind_ != IndexKind::hnsw; }
  void remove(const std::vector<int64_t>& ids);
  // The k best of every one of `n` queries (row-major, dim() floats each); fewer when the index holds fewer.
  std::vector<std::vector<Hit>> search(const float* queries, int64_t n, int64_t k) const;

  // FAISS's own format; an IVF index that has not been trained yet is empty bytes.
  std::string serialize() const;
  // Reads what serialize() wrote; an Error when it is not that, or holds another kind or dimension.
  static VectorIndex deserialize(const std::string& bytes, IndexKind kind, int64_t dim);

 private:
  struct Impl;
  IndexKind kind_;
  int64_t dim_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmlearn::search
