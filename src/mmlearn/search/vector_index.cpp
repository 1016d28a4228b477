#include "mmlearn/search/vector_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cmath>

#include "mmlearn/core/error.h"

namespace mmlearn::search {

namespace {

constexpr int kHnswLinks = 32;        // M: links per node (FAISS's and hnswlib's usual 16-64)
constexpr int kHnswBuildBeam = 80;    // efConstruction
constexpr int kHnswSearchBeam = 128;  // efSearch: recall@10 against speed, measured in bench/
constexpr int kIvfProbes = 16;        // nprobe: inverted lists scanned a query
constexpr int kIvfTrainingPerList =
    64;  // k-means sees at most this many vectors a list: bounds training time
constexpr int64_t kIvfMinTraining = 1000;

// FAISS reports misuse with exceptions of its own; callers see mmlearn errors.
template <class F>
auto faiss_call(const char* what, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const faiss::FaissException& e) {
    throw Error(str_cat("vector index: ", what, " failed: ", e.what()));
  }
}

// Product quantization splits a vector into m parts of equal length, 8 bits a part: m is the largest divisor
// of dim with at least 8 dimensions a part (64 bytes a vector at 512).
int pq_parts(int64_t dim) {
  for (int64_t m = std::max<int64_t>(1, dim / 8); m > 1; --m)
    if (dim % m == 0) return static_cast<int>(m);
  return 1;
}

// Inverted lists for n vectors: about 4 sqrt(n) (FAISS's guidance is 4 to 16 sqrt(n)), each trained on at
// least 39 vectors (FAISS's own floor).
int64_t ivf_lists(int64_t n) {
  return std::clamp<int64_t>(static_cast<int64_t>(4 * std::sqrt(double(n))), 1, std::max<int64_t>(1, n / 39));
}

// Whether a FAISS index read back is the structure `kind` builds.
bool holds_kind(const faiss::Index* base, IndexKind kind) {
  switch (kind) {
    case IndexKind::flat:
      return dynamic_cast<const faiss::IndexFlatIP*>(base) != nullptr;
    case IndexKind::hnsw:
      return dynamic_cast<const faiss::IndexHNSW*>(base) != nullptr;
    case IndexKind::ivf:
      return dynamic_cast<const faiss::IndexIVFFlat*>(base) != nullptr;
    case IndexKind::ivfpq:
      return dynamic_cast<const faiss::IndexIVFPQ*>(base) != nullptr;
  }
  return false;
}

}  // namespace

IndexKind parse_index_kind(const std::string& name) {
  if (name == "flat") return IndexKind::flat;
  if (name == "hnsw") return IndexKind::hnsw;
  if (name == "ivf") return IndexKind::ivf;
  if (name == "ivfpq") return IndexKind::ivfpq;
  throw UsageError(
      str_cat("index kind \"", name, "\": expected flat (exact), hnsw, ivf or ivfpq (approximate)"));
}

bool has_lists(IndexKind kind) { return kind == IndexKind::ivf || kind == IndexKind::ivfpq; }

std::string index_kind_name(IndexKind kind) {
  switch (kind) {
    case IndexKind::flat:
      return "flat";
    case IndexKind::hnsw:
      return "hnsw";
    case IndexKind::ivf:
      return "ivf";
    case IndexKind::ivfpq:
      return "ivfpq";
  }
  return "?";
}

struct VectorIndex::Impl {
  std::unique_ptr<faiss::IndexIDMap2> map;  // ids over the kind's index; null for an untrained ivf or ivfpq

  static std::unique_ptr<faiss::IndexIDMap2> make(IndexKind kind, int64_t dim, int64_t n_training) {
    const int d = static_cast<int>(dim);
    faiss::Index* base = nullptr;
    if (kind == IndexKind::flat) {
      base = new faiss::IndexFlatIP(d);
    } else if (kind == IndexKind::hnsw) {
      auto* hnsw = new faiss::IndexHNSWFlat(d, kHnswLinks, faiss::METRIC_INNER_PRODUCT);
      hnsw->hnsw.efConstruction = kHnswBuildBeam;
      hnsw->hnsw.efSearch = kHnswSearchBeam;
      base = hnsw;
    } else {
      const auto lists = static_cast<size_t>(ivf_lists(n_training));
      faiss::IndexIVF* ivf = nullptr;
      if (kind == IndexKind::ivf)
        ivf = new faiss::IndexIVFFlat(new faiss::IndexFlatIP(d), d, lists, faiss::METRIC_INNER_PRODUCT);
      else
        ivf = new faiss::IndexIVFPQ(new faiss::IndexFlatIP(d), d, lists, pq_parts(dim), 8,
                                    faiss::METRIC_INNER_PRODUCT);
      ivf->own_fields = true;
      ivf->nprobe = std::min<size_t>(kIvfProbes, lists);
      ivf->cp.max_points_per_centroid = kIvfTrainingPerList;
      base = ivf;
    }
    auto map = std::make_unique<faiss::IndexIDMap2>(base);
    map->own_fields = true;
    return map;
  }
};

VectorIndex::VectorIndex(IndexKind kind, int64_t dim)
    : kind_(kind), dim_(dim), impl_(std::make_unique<Impl>()) {
  check(dim > 0 && dim <= 65536, "vector index: dimension ", dim, " is outside 1..65536");
  if (!has_lists(kind)) impl_->map = Impl::make(kind, dim, 0);
}
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;
VectorIndex::~VectorIndex() = default;

int64_t VectorIndex::size() const { return impl_->map ? impl_->map->ntotal : 0; }

int64_t VectorIndex::min_training_vectors() const { return has_lists(kind_) ? kIvfMinTraining : 0; }

int64_t VectorIndex::lists() const {
  const auto* ivf = impl_->map ? dynamic_cast<const faiss::IndexIVF*>(impl_->map->index) : nullptr;
  return ivf ? static_cast<int64_t>(ivf->nlist) : 0;
}

bool VectorIndex::needs_training(int64_t n) const {
  if (!has_lists(kind_) || n < kIvfMinTraining) return false;
  return !impl_->map || ivf_lists(n) >= 2 * lists();
}

void VectorIndex::add(const std::vector<int64_t>& ids, const float* vectors) {
  const auto n = static_cast<int64_t>(ids.size());
  if (n == 0) return;
  if (!impl_->map) {
    check(n >= kIvfMinTraining, "an ", index_kind_name(kind_),
          " index learns its lists from the first vectors added, and needs at least ", kIvfMinTraining,
          " (got ", n, "); use --kind flat or hnsw for a collection this small");
    impl_->map = Impl::make(kind_, dim_, n);
    faiss_call("training", [&] { impl_->map->train(n, vectors); });
  }
  faiss_call("adding vectors", [&] { impl_->map->add_with_ids(n, vectors, ids.data()); });
}

void VectorIndex::remove(const std::vector<int64_t>& ids) {
  check(can_remove(), "vector index: a ", index_kind_name(kind_), " index cannot remove vectors");
  if (!impl_->map || ids.empty()) return;
  faiss::IDSelectorBatch selector(ids.size(), ids.data());
  faiss_call("removing vectors", [&] { impl_->map->remove_ids(selector); });
}

std::vector<std::vector<Hit>> VectorIndex::search(const float* queries, int64_t n, int64_t k) const {
  std::vector<std::vector<Hit>> out(static_cast<size_t>(n));
  k = std::min(k, size());
  if (k <= 0 || n <= 0) return out;
  std::vector<float> scores(static_cast<size_t>(n * k));
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(n * k));
  faiss_call("search", [&] { impl_->map->search(n, queries, k, scores.data(), labels.data()); });
  for (int64_t q = 0; q < n; ++q)
    for (int64_t j = 0; j < k; ++j) {
      const auto at = static_cast<size_t>(q * k + j);
      if (labels[at] >= 0) out[static_cast<size_t>(q)].push_back({labels[at], scores[at]});
    }
  return out;
}

std::string VectorIndex::serialize() const {
  if (!impl_->map) return {};
  faiss::VectorIOWriter writer;
  faiss_call("saving", [&] { faiss::write_index(impl_->map.get(), &writer); });
  return {reinterpret_cast<const char*>(writer.data.data()), writer.data.size()};
}

VectorIndex VectorIndex::deserialize(const std::string& bytes, IndexKind kind, int64_t dim) {
  VectorIndex index(kind, dim);
  if (bytes.empty() && has_lists(kind)) return index;
  faiss::VectorIOReader reader;
  reader.data.assign(bytes.begin(), bytes.end());
  std::unique_ptr<faiss::Index> read(faiss_call("reading", [&] { return faiss::read_index(&reader); }));
  auto* map = dynamic_cast<faiss::IndexIDMap2*>(read.get());
  const faiss::Index* base = map ? map->index : nullptr;
  check(holds_kind(base, kind) && map->d == dim, "vector index: the saved index is not a ",
        index_kind_name(kind), " index of dimension ", dim);
  read.release();
  index.impl_->map.reset(map);
  return index;
}

}  // namespace mmlearn::search
