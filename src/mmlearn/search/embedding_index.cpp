#include "mmlearn/search/embedding_index.h"

#include <cmath>
#include <cstring>
#include <map>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/search/sqlite.h"

namespace mmlearn::search {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "mmlearn-index-1";

// FNV-1a: enough to tell a vectors file that is not the one the database recorded.
uint64_t checksum(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

nlohmann::json to_json(const SearchHit& hit) {
  return {{"id", hit.id}, {"score", hit.score}, {"key", hit.key}, {"record", hit.record}};
}

nlohmann::json to_json(const IndexInfo& info) {
  nlohmann::json j = {{"count", info.count},
                      {"model", info.model},
                      {"model_type", info.model_type},
                      {"modality", info.modality},
                      {"kind", index_kind_name(info.kind)},
                      {"dim", info.dim}};
  if (info.lists > 0) j["lists"] = info.lists;
  return j;
}

using sqlite::Database, sqlite::Statement, sqlite::Transaction, sqlite::read_meta, sqlite::set_meta;

struct EmbeddingIndex::State {
  fs::path dir;
  std::unique_ptr<Database> db;
  IndexInfo info;
  std::vector<float> probe;
  int64_t generation = 0;  // of the items the vectors below hold
  std::unique_ptr<VectorIndex> vectors;

  fs::path vectors_file() const { return dir / "vectors.faiss"; }

  int64_t stored_generation() {
    Statement s(*db, "SELECT value FROM meta WHERE key = 'generation'");
    return s.step() ? std::stoll(s.text(0)) : 0;
  }
  int64_t count() {
    Statement s(*db, "SELECT COUNT(*) FROM items");
    s.step();
    return s.integer(0);
  }
  // What the database says vectors.faiss holds ({"generation", "size", "checksum"}), or null.
  nlohmann::json recorded_vectors() {
    Statement s(*db, "SELECT value FROM meta WHERE key = 'vectors'");
    return s.step() ? nlohmann::json::parse(s.text(0), nullptr, false) : nlohmann::json();
  }
  // Ends a change of the items: the generation moves on, in the same transaction.
  void commit_change(Transaction& t, int64_t from_generation) {
    set_meta(*db, "generation", std::to_string(from_generation + 1));
    t.commit();
    generation = from_generation + 1;
  }

  // The vectors of every item in the database; an IVF index trains on them all (and stays empty while they
  // are fewer than it needs).
  void rebuild() {
    vectors = std::make_unique<VectorIndex>(info.kind, info.dim);
    std::vector<int64_t> ids;
    std::vector<float> rows;
    Statement s(*db, "SELECT id, embedding FROM items ORDER BY id");
    const size_t row_bytes = static_cast<size_t>(info.dim) * sizeof(float);
    while (s.step()) {
      const std::string blob = s.blob(1);
      check(blob.size() == row_bytes, db->path().string(), ": item ", s.integer(0), " holds an embedding of ",
            blob.size(), " bytes, not ", row_bytes, " (the database is damaged; build the index again)");
      ids.push_back(s.integer(0));
      rows.resize(rows.size() + static_cast<size_t>(info.dim));
      std::memcpy(rows.data() + rows.size() - static_cast<size_t>(info.dim), blob.data(), row_bytes);
    }
    if (static_cast<int64_t>(ids.size()) >= vectors->min_training_vectors()) vectors->add(ids, rows.data());
  }

  // vectors.faiss when the database says it holds exactly the current items, else a rebuild.
  void load_vectors() {
    generation = stored_generation();
    const auto recorded = recorded_vectors();
    std::error_code ec;
    const auto size = fs::file_size(vectors_file(), ec);
    if (recorded.is_object() && recorded.value("generation", int64_t{-1}) == generation && !ec &&
        recorded.value("size", int64_t{-1}) == static_cast<int64_t>(size)) {
      const std::string bytes = read_file(vectors_file());
      if (std::to_string(checksum(bytes)) == recorded.value("checksum", std::string())) {
        try {
          vectors = std::make_unique<VectorIndex>(VectorIndex::deserialize(bytes, info.kind, info.dim));
          if (vectors->size() == count()) return;
        } catch (const Error&) {
          // rebuilt below
        }
      }
    }
    rebuild();
  }
};

EmbeddingIndex::EmbeddingIndex(std::unique_ptr<State> state) : s_(std::move(state)) {}
EmbeddingIndex::EmbeddingIndex(EmbeddingIndex&&) noexcept = default;
EmbeddingIndex& EmbeddingIndex::operator=(EmbeddingIndex&&) noexcept = default;
EmbeddingIndex::~EmbeddingIndex() = default;

bool EmbeddingIndex::exists(const fs::path& dir) { return fs::exists(dir / "index.sqlite"); }

EmbeddingIndex EmbeddingIndex::create(const fs::path& dir, const IndexInfo& info,
                                      const std::vector<float>& probe) {
  check(!exists(dir), dir.string(),
        " already holds an index: add to it with `mmlearn index add`, or choose another --out");
  check(info.dim > 0 && static_cast<int64_t>(probe.size()) == info.dim, "index: probe of ", probe.size(),
        " values for dimension ", info.dim);
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, "cannot create ", dir.string(), ": ", ec.message());
  auto s = std::make_unique<State>();
  s->dir = dir;
  s->info = info;
  s->info.count = 0;
  s->probe = probe;
  s->db = std::make_unique<Database>(dir / "index.sqlite", true);
  {
    Transaction t(*s->db);
    s->db->exec(
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE items(id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, record TEXT NOT "
        "NULL,"
        " embedding BLOB NOT NULL)");
    set_meta(*s->db, "format", kFormat);
    set_meta(*s->db, "model", info.model);
    set_meta(*s->db, "model_type", info.model_type);
    set_meta(*s->db, "modality", info.modality);
    set_meta(*s->db, "kind", index_kind_name(info.kind));
    set_meta(*s->db, "dim", std::to_string(info.dim));
    set_meta(*s->db, "probe", nlohmann::json(probe).dump());
    set_meta(*s->db, "generation", "0");
    t.commit();
  }
  sync_directory(dir);
  s->vectors = std::make_unique<VectorIndex>(info.kind, info.dim);
  return EmbeddingIndex(std::move(s));
}

EmbeddingIndex EmbeddingIndex::open(const fs::path& dir) {
  check(exists(dir), dir.string(), " holds no index (no index.sqlite): make one with `mmlearn index build`");
  auto s = std::make_unique<State>();
  s->dir = dir;
  s->db = std::make_unique<Database>(dir / "index.sqlite", false);
  const auto meta = read_meta(*s->db);
  const std::string where = (dir / "index.sqlite").string();
  auto field = [&](const std::string& key) {
    check(meta.count(key) > 0, where, ": the index has no \"", key,
          "\" (an interrupted `index build`? build it again)");
    return meta.at(key);
  };
  check(field("format") == kFormat, where, ": format \"", field("format"), "\" is not ", kFormat);
  s->info.model = field("model");
  s->info.model_type = field("model_type");
  s->info.modality = field("modality");
  s->info.kind = parse_index_kind(field("kind"));
  const auto dim = nlohmann::json::parse(field("dim"), nullptr, false);
  const auto probe = nlohmann::json::parse(field("probe"), nullptr, false);
  check(dim.is_number_integer() && dim.get<int64_t>() > 0 && dim.get<int64_t>() <= 65536, where,
        ": \"dim\" is not a dimension in 1..65536");
  s->info.dim = dim.get<int64_t>();
  check(probe.is_array() && static_cast<int64_t>(probe.size()) == s->info.dim, where,
        ": \"probe\" is not a list of ", s->info.dim, " numbers");
  for (const auto& v : probe) {
    check(v.is_number(), where, ": \"probe\" holds a value that is not a number");
    s->probe.push_back(v.get<float>());
  }
  s->load_vectors();
  return EmbeddingIndex(std::move(s));
}

const fs::path& EmbeddingIndex::dir() const { return s_->dir; }

IndexInfo EmbeddingIndex::info() const {
  IndexInfo info = s_->info;
  info.count = s_->count();
  info.lists = s_->vectors->lists();
  return info;
}

void EmbeddingIndex::check_probe(const std::vector<float>& probe, const std::string& model) const {
  bool same = probe.size() == s_->probe.size();
  for (size_t i = 0; same && i < probe.size(); ++i) same = std::abs(probe[i] - s_->probe[i]) <= 1e-4f;
  check(same, model, " does not embed as the model ", s_->dir.string(), " was built with (", s_->info.model,
        "): its vectors would not be comparable; search with that model, or build an index with this one");
}

bool EmbeddingIndex::contains(const std::string& key) const {
  Statement s(*s_->db, "SELECT 1 FROM items WHERE key = ?");
  return s.bind(1, key).step();
}

void EmbeddingIndex::add(const std::vector<IndexItem>& items, const float* embeddings) {
  if (items.empty()) return;
  const size_t dim = static_cast<size_t>(s_->info.dim);
  for (size_t i = 0; i < items.size() * dim; ++i)
    check(std::isfinite(embeddings[i]), "index: the embedding of \"", items[i / dim].key, "\" is not finite");
  std::vector<int64_t> ids;
  bool others_changed = false;
  {
    Transaction t(*s_->db);
    const int64_t generation = s_->stored_generation();
    others_changed = generation != s_->generation;
    Statement insert(*s_->db, "INSERT INTO items(key, record, embedding) VALUES(?, ?, ?)");
    for (size_t i = 0; i < items.size(); ++i) {
      insert.bind(1, items[i].key)
          .bind(2, items[i].record.dump())
          .bind_blob(3, embeddings + i * dim, dim * sizeof(float));
      try {
        insert.step();
      } catch (const Error&) {  // the key's UNIQUE constraint, most likely: say so
        check(!contains(items[i].key), s_->dir.string(), " already holds \"", items[i].key, "\"");
        throw;
      }
      insert.reset();
      ids.push_back(sqlite3_last_insert_rowid(s_->db->get()));
    }
    s_->commit_change(t, generation);
  }
  // After another process's change since this one read the items, or into an IVF index not trained yet or
  // outgrown (VectorIndex::needs_training: it learns its lists from every item): from the database. Otherwise
  // the new vectors join the others.
  const bool untrained = s_->vectors->size() == 0 && s_->vectors->min_training_vectors() > 0;
  const auto held = s_->vectors->size() + static_cast<int64_t>(ids.size());
  if (others_changed || untrained || s_->vectors->needs_training(held))
    s_->rebuild();
  else
    s_->vectors->add(ids, embeddings);
}

int64_t EmbeddingIndex::remove(const std::vector<std::string>& keys) {
  std::vector<int64_t> ids;
  bool others_changed = false;
  {
    Transaction t(*s_->db);
    const int64_t generation = s_->stored_generation();
    others_changed = generation != s_->generation;
    Statement find(*s_->db, "SELECT id FROM items WHERE key = ?");
    Statement erase(*s_->db, "DELETE FROM items WHERE id = ?");
    for (const auto& key : keys) {
      find.bind(1, key);
      if (find.step()) {
        ids.push_back(find.integer(0));
        erase.bind(1, ids.back()).step();
        erase.reset();
      }
      find.reset();
    }
    if (ids.empty()) return 0;
    s_->commit_change(t, generation);
  }
  if (others_changed || !s_->vectors->can_remove())
    s_->rebuild();
  else
    s_->vectors->remove(ids);
  return static_cast<int64_t>(ids.size());
}

std::vector<std::vector<SearchHit>> EmbeddingIndex::search(const float* queries, int64_t n, int64_t k) const {
  if (s_->vectors->size() == 0) {  // empty, or an IVF index not trained yet
    const int64_t held = s_->count();
    check(held == 0, s_->dir.string(), ": an ", index_kind_name(s_->info.kind), " index trains on at least ",
          s_->vectors->min_training_vectors(), " items and holds ", held, "; build it as flat or hnsw");
  }
  std::vector<std::vector<SearchHit>> out;
  Statement row(*s_->db, "SELECT key, record FROM items WHERE id = ?");
  for (const auto& hits : s_->vectors->search(queries, n, k)) {
    auto& results = out.emplace_back();
    for (const auto& hit : hits) {
      if (!row.bind(1, hit.id).step()) {  // removed by another process since this one read the items
        row.reset();
        continue;
      }
      auto record = nlohmann::json::parse(row.text(1), nullptr, false);
      results.push_back({hit.id, hit.score, row.text(0), record.is_discarded() ? nlohmann::json() : record});
      row.reset();
    }
  }
  return out;
}

void EmbeddingIndex::save() {
  const auto recorded = s_->recorded_vectors();
  if (recorded.is_object() && recorded.value("generation", int64_t{-1}) == s_->generation &&
      fs::exists(s_->vectors_file()))
    return;
  const std::string bytes = s_->vectors->serialize();
  write_file_atomic(s_->vectors_file(), bytes);
  // Recorded after the file is in place: a crash in between leaves a record of the older file, and the next
  // open rebuilds.
  Transaction t(*s_->db);
  if (s_->stored_generation() == s_->generation)
    set_meta(*s_->db, "vectors",
             nlohmann::json{{"generation", s_->generation},
                            {"size", static_cast<int64_t>(bytes.size())},
                            {"checksum", std::to_string(checksum(bytes))}}
                 .dump());
  t.commit();
}

}  // namespace mmlearn::search
