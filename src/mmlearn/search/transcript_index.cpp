#include "mmlearn/search/transcript_index.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "mmlearn/core/error.h"
#include "mmlearn/search/sqlite.h"

namespace mmlearn::search {
namespace fs = std::filesystem;
using nlohmann::json;
using sqlite::Database, sqlite::Statement, sqlite::Transaction;

namespace {

constexpr const char* kTranscriptFormat = "mmlearn-transcripts-1";
constexpr const char* kTranscriptFile = "transcripts.sqlite";

struct Word {
  std::string text;   // lower case
  size_t begin, end;  // bytes of the source text
};

// Words as FTS5's unicode61 tokenizer sees ASCII text: runs of letters and digits, in lower case.
std::vector<Word> words_of(const std::string& text) {
  std::vector<Word> words;
  for (size_t i = 0; i < text.size();) {
    if (!std::isalnum(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    std::string w;
    while (j < text.size() && std::isalnum(static_cast<unsigned char>(text[j])))
      w.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(text[j++]))));
    words.push_back({w, i, j});
    i = j;
  }
  return words;
}

}  // namespace

PhraseMatch match_phrase(const std::string& query, const Utterance& u) {
  const auto q = words_of(query), t = words_of(u.text);
  PhraseMatch best{0, u.start, u.end};
  if (q.empty() || t.empty()) return best;
  size_t best_run = 0, best_at = 0;
  for (size_t ti = 0; ti < t.size(); ++ti)
    for (size_t qi = 0; qi < q.size(); ++qi) {
      size_t run = 0;
      while (ti + run < t.size() && qi + run < q.size() && t[ti + run].text == q[qi + run].text) ++run;
      if (run > best_run) best_run = run, best_at = ti;
    }
  if (best_run == 0) return best;
  // The words' place in the text, as a share of its length, placed in the utterance's time (speech runs at
  // a roughly even rate within one utterance).
  const double length = static_cast<double>(u.text.size()), duration = u.end - u.start;
  best.score = static_cast<double>(best_run) / static_cast<double>(q.size());
  best.start = u.start + duration * static_cast<double>(t[best_at].begin) / length;
  best.end = u.start + duration * static_cast<double>(t[best_at + best_run - 1].end) / length;
  return best;
}

struct TranscriptIndex::State {
  fs::path dir;
  std::unique_ptr<Database> db;
  std::string model, model_type;
};

TranscriptIndex::TranscriptIndex(std::unique_ptr<State> state) : s_(std::move(state)) {}
TranscriptIndex::TranscriptIndex(TranscriptIndex&&) noexcept = default;
TranscriptIndex& TranscriptIndex::operator=(TranscriptIndex&&) noexcept = default;
TranscriptIndex::~TranscriptIndex() = default;

bool TranscriptIndex::exists(const fs::path& dir) { return fs::exists(dir / kTranscriptFile); }

TranscriptIndex TranscriptIndex::create(const fs::path& dir, const std::string& model,
                                        const std::string& model_type) {
  check(!exists(dir) && !EmbeddingIndex::exists(dir), dir.string(),
        " already holds an index: add to it with `mmlearn index add`, or choose another --out");
  fs::create_directories(dir);
  auto s = std::make_unique<State>();
  s->dir = dir;
  s->model = model;
  s->model_type = model_type;
  // Created under a temporary name and renamed once whole: a folder holds a complete database or none.
  const fs::path temporary = dir / (std::string(kTranscriptFile) + ".new");
  fs::remove(temporary);
  {
    Database db(temporary, true);
    Transaction t(db);
    db.exec("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    db.exec(
        "CREATE TABLE recordings(id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT NULL, "
        "record TEXT NOT NULL)");
    // Utterances: full-text indexed by their words, with the recording and the span beside them.
    db.exec(
        "CREATE VIRTUAL TABLE utterances USING fts5(text, recording UNINDEXED, start UNINDEXED, "
        "end UNINDEXED)");
    sqlite::set_meta(db, "format", kTranscriptFormat);
    sqlite::set_meta(db, "model", model);
    sqlite::set_meta(db, "model_type", model_type);
    t.commit();
  }
  fs::remove(dir / (std::string(kTranscriptFile) + ".new-wal"));
  fs::rename(temporary, dir / kTranscriptFile);
  s->db = std::make_unique<Database>(dir / kTranscriptFile, false);
  return TranscriptIndex(std::move(s));
}

TranscriptIndex TranscriptIndex::open(const fs::path& dir) {
  check(exists(dir), dir.string(), " holds no transcript index (no ", kTranscriptFile, ")");
  auto s = std::make_unique<State>();
  s->dir = dir;
  s->db = std::make_unique<Database>(dir / kTranscriptFile, false);
  const auto meta = sqlite::read_meta(*s->db);
  const std::string where = (dir / kTranscriptFile).string();
  for (const char* key : {"format", "model", "model_type"})
    check(meta.count(key) > 0, where, ": the index has no \"", key, "\"");
  check(meta.at("format") == kTranscriptFormat, where, ": format \"", meta.at("format"), "\" is not ",
        kTranscriptFormat);
  s->model = meta.at("model");
  s->model_type = meta.at("model_type");
  return TranscriptIndex(std::move(s));
}

const fs::path& TranscriptIndex::dir() const { return s_->dir; }
const std::string& TranscriptIndex::model() const { return s_->model; }

json TranscriptIndex::info() const {
  Statement recordings(*s_->db, "SELECT COUNT(*) FROM recordings");
  recordings.step();
  Statement utterances(*s_->db, "SELECT COUNT(*) FROM utterances");
  utterances.step();
  return {{"count", recordings.integer(0)},
          {"utterances", utterances.integer(0)},
          {"model", s_->model},
          {"model_type", s_->model_type},
          {"modality", "audio"},
          {"kind", "transcript"},
          {"dim", 0}};
}

bool TranscriptIndex::contains(const std::string& key) const {
  Statement s(*s_->db, "SELECT 1 FROM recordings WHERE key = ?");
  return s.bind(1, key).step();
}

void TranscriptIndex::add(const std::string& key, const json& record,
                          const std::vector<Utterance>& utterances) {
  Transaction t(*s_->db);
  check(!contains(key), s_->dir.string(), ": already holds ", key);
  Statement(*s_->db, "INSERT INTO recordings(key, record) VALUES(?, ?)")
      .bind(1, key)
      .bind(2, record.dump())
      .step();
  const int64_t id = sqlite3_last_insert_rowid(s_->db->get());
  Statement insert(*s_->db, "INSERT INTO utterances(text, recording, start, end) VALUES(?, ?, ?, ?)");
  for (const auto& u : utterances) {
    insert.bind(1, u.text).bind(2, id).bind(3, u.start).bind(4, u.end).step();
    insert.reset();
  }
  t.commit();
}

int64_t TranscriptIndex::remove(const std::vector<std::string>& keys) {
  Transaction t(*s_->db);
  int64_t removed = 0;
  for (const auto& key : keys) {
    Statement find(*s_->db, "SELECT id FROM recordings WHERE key = ?");
    if (!find.bind(1, key).step()) continue;
    const int64_t id = find.integer(0);
    Statement(*s_->db, "DELETE FROM utterances WHERE recording = ?").bind(1, id).step();
    Statement(*s_->db, "DELETE FROM recordings WHERE id = ?").bind(1, id).step();
    ++removed;
  }
  t.commit();
  return removed;
}

std::vector<SearchHit> TranscriptIndex::search(const std::string& query, int64_t k) const {
  std::set<std::string> unique;
  for (const auto& w : words_of(query)) unique.insert(w.text);
  if (unique.empty()) return {};
  // Candidates: utterances with any of the words, best BM25 first; ranked below by the phrase they say.
  std::string match;
  for (const auto& w : unique) match += (match.empty() ? "\"" : " OR \"") + w + "\"";
  Statement s(*s_->db,
              "SELECT u.rowid, u.text, u.start, u.end, r.key, r.record FROM utterances u "
              "JOIN recordings r ON r.id = u.recording WHERE utterances MATCH ? ORDER BY bm25(utterances) "
              "LIMIT ?");
  s.bind(1, match).bind(2, std::max<int64_t>(200, 20 * k));
  struct Candidate {
    SearchHit hit;
    double score;
  };
  std::vector<Candidate> candidates;
  while (s.step()) {
    const Utterance u{s.real(2), s.real(3), s.text(1)};
    const PhraseMatch m = match_phrase(query, u);
    json record = json::parse(s.text(5), nullptr, false);
    if (!record.is_object()) record = json::object();
    record["start"] = m.start;
    record["end"] = m.end;
    record["transcript"] = u.text;
    record["utterance"] = {{"start", u.start}, {"end", u.end}};
    candidates.push_back(
        {{s.integer(0), static_cast<float>(m.score), s.text(4), std::move(record)}, m.score});
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });  // then BM25
  std::vector<SearchHit> hits;
  for (auto& c : candidates) {
    if (static_cast<int64_t>(hits.size()) == k) break;
    hits.push_back(std::move(c.hit));
  }
  return hits;
}

}  // namespace mmlearn::search
