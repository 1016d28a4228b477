// The SQLite handles the search indexes keep their truth in (search/embedding_index.h,
// search/transcript_index.h): a database opened with a write-ahead log and a sync at every commit, prepared
// statements, transactions that roll back when left by an exception, and the meta table of key/value pairs.
//
//   sqlite::Database db("idx/index.sqlite", /*create=*/false);
//   sqlite::Statement s(db, "SELECT key FROM items WHERE id = ?");
//   if (s.bind(1, id).step()) use(s.text(0));
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <string>

#include "mmlearn/core/error.h"

namespace mmlearn::search {
namespace sqlite {

class Database {
 public:
  Database(const std::filesystem::path& path, bool create) : path_(path) {
    const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw Error(str_cat(path.string(), ": cannot open the index database: ", why));
    }
    sqlite3_busy_timeout(db_, 10000);  // another process's transaction
    // Write-ahead log with a sync at every commit: a committed add survives a crash or a power cut.
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
  }
  ~Database() { sqlite3_close(db_); }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      const std::string why = message ? message : sqlite3_errmsg(db_);
      sqlite3_free(message);
      fail(why);
    }
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(str_cat(path_.string(), ": ", why, " (is it an mmlearn index database?)"));
  }
  sqlite3* get() const { return db_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement(Database& db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db.get(), sql, -1, &stmt_, nullptr) != SQLITE_OK)
      db.fail(sqlite3_errmsg(db.get()));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, const std::string& text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, int64_t value) {
    sqlite3_bind_int64(stmt_, i, value);
    return *this;
  }
  Statement& bind(int i, double value) {
    sqlite3_bind_double(stmt_, i, value);
    return *this;
  }
  Statement& bind_blob(int i, const void* data, size_t size) {
    sqlite3_bind_blob(stmt_, i, data, static_cast<int>(size), SQLITE_TRANSIENT);
    return *this;
  }
  bool step() {  // true: a row is ready
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_.fail(sqlite3_errmsg(db_.get()));
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const { return sqlite3_column_double(stmt_, column); }
  std::string text(int column) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
  }
  std::string blob(int column) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
  }

 private:
  Database& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Commits at commit(); rolls back when left by an exception.
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    db_.exec("COMMIT");
    done_ = true;
  }

 private:
  Database& db_;
  bool done_ = false;
};

inline std::map<std::string, std::string> read_meta(Database& db) {
  std::map<std::string, std::string> meta;
  Statement s(db, "SELECT key, value FROM meta");
  while (s.step()) meta[s.text(0)] = s.text(1);
  return meta;
}

inline void set_meta(Database& db, const std::string& key, const std::string& value) {
  Statement(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)").bind(1, key).bind(2, value).step();
}

}  // namespace sqlite

}  // namespace mmlearn::search
