#include "mmlearn/data/synthetic.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"

namespace mmlearn::data {

namespace {
constexpr int64_t kChunkRecords = 32;  // unit of work for a thread; records are written in index order
}

std::string index_name(int64_t index) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%06lld", static_cast<long long>(index));
  return buffer;
}

void write_media(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary);
  file.write(bytes.data(), std::streamsize(bytes.size()));
  check(file.good(), "cannot write ", path.string(), " (is the disk full?)");
}

// Workers take chunks of records; the calling thread writes finished chunks in index order, so the file
// does not depend on scheduling.
void write_records(const std::filesystem::path& manifest, int64_t n, int threads,
                   const std::function<std::string(int64_t)>& make_record,
                   const std::function<void(int64_t done)>& on_written) {
  AtomicFile file(manifest);
  const int64_t n_chunks = (n + kChunkRecords - 1) / kChunkRecords;
  std::vector<std::string> results(static_cast<size_t>(n_chunks));
  std::vector<char> ready(static_cast<size_t>(n_chunks), 0);
  std::mutex mutex;
  std::condition_variable cv;
  std::exception_ptr error;
  std::atomic<int64_t> next_chunk{0};
  std::atomic<bool> stop{false};

  auto worker = [&] {
    for (int64_t c; !stop && (c = next_chunk++) < n_chunks;) {
      std::string text;
      try {
        for (int64_t i = c * kChunkRecords; i < std::min(n, (c + 1) * kChunkRecords); ++i) {
          text += make_record(i);
        }
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!error) error = std::current_exception();
        stop = true;
        cv.notify_all();
        return;
      }
      std::lock_guard lock(mutex);
      results[size_t(c)] = std::move(text);
      ready[size_t(c)] = 1;
      cv.notify_all();
    }
  };

  std::vector<std::thread> pool;
  auto join_all = [&] {
    stop = stop || error != nullptr;
    for (auto& t : pool) t.join();
    pool.clear();
  };
  try {
    for (int t = 0; t < std::min<int64_t>(threads, std::max<int64_t>(n_chunks, 1)); ++t)
      pool.emplace_back(worker);
    for (int64_t c = 0; c < n_chunks; ++c) {
      std::string text;
      {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return ready[size_t(c)] || error; });
        if (error) break;
        text = std::move(results[size_t(c)]);
        results[size_t(c)] = std::string();
      }
      file.write(text);
      if (on_written) on_written(std::min(n, (c + 1) * kChunkRecords));
    }
  } catch (...) {
    stop = true;
    join_all();
    throw;
  }
  join_all();
  if (error) std::rethrow_exception(error);
  file.commit();
}

void prepare_data_dir(const std::filesystem::path& out_dir, bool overwrite) {
  namespace fs = std::filesystem;
  static const char* parts[] = {"train.jsonl",  "test.jsonl", "classes.json",
                                "ceiling.json", "images",     "audio"};
  std::vector<std::string> present;
  for (const char* part : parts)
    if (fs::exists(out_dir / part)) present.push_back(part);
  if (present.empty()) return;
  if (!overwrite)
    throw UsageError(str_cat(out_dir.string(), " already holds a data set (", join(present),
                             "): pass --overwrite to replace it, or choose another --out"));
  for (const auto& part : present) fs::remove_all(out_dir / part);
}

}  // namespace mmlearn::data
