// The records of a training set that is decoded as batches need it (a shard set) rather than up front, and
// the log of the records that could not be used. A record that cannot be decoded is reported once, and the
// next one that can stands in for it: a batch keeps its size, and a run its order, whichever loader thread
// meets the bad record first.
//
//   mmlearn::data::StreamedRecords s(mmlearn::data::read_shard_set("shards/{000000..000009}.tar"));
//   auto pixels = s.decode(17, [&](const Record& r) { return read_record_image(s.manifest(), r, 64); });
//   s.skipped().log().count;   // the records left out so far, with the set's own problems
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "mmlearn/core/error.h"
#include "mmlearn/data/manifest.h"

namespace mmlearn::data {

// The records of a data set left out so far: how many, and why ("file:line: reason") as far as kept.
struct SkipLog {
  int64_t count = 0;
  std::vector<std::string> reasons;
};

// Records that could not be used, as they are found (from any thread): counted, the first reasons kept.
class SkippedRecords {
 public:
  void add(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++count_;
    if (reasons_.size() < 1000) reasons_.push_back(reason);
  }
  SkipLog log() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {count_, reasons_};
  }

 private:
  mutable std::mutex mutex_;
  int64_t count_ = 0;
  std::vector<std::string> reasons_;
};

class StreamedRecords {
 public:
  explicit StreamedRecords(Manifest manifest) : manifest_(std::move(manifest)) {
    for (const auto& problem : manifest_.problems) skipped_->add(problem);
  }
  int64_t size() const { return static_cast<int64_t>(manifest_.records.size()); }
  const Manifest& manifest() const { return manifest_; }
  const SkippedRecords& skipped() const { return *skipped_; }

  // decode(record) for record i, or for the first after it that decodes (an Error is a bad record).
  template <class Decode>
  auto decode(int64_t i, Decode decode) const -> decltype(decode(std::declval<const Record&>())) {
    for (int64_t k = 0; k < size(); ++k) {
      const int64_t j = (i + k) % size();
      if (is_bad(j)) continue;
      try {
        return decode(manifest_.records[static_cast<size_t>(j)]);
      } catch (const Error& e) {
        mark_bad(j, e.what());
      }
    }
    throw Error(str_cat(manifest_.path.string(), ": no record could be decoded"));
  }

 private:
  bool is_bad(int64_t i) const {
    std::lock_guard<std::mutex> lock(*mutex_);
    return bad_.count(i) > 0;
  }
  void mark_bad(int64_t i, const std::string& why) const {
    std::lock_guard<std::mutex> lock(*mutex_);
    if (bad_.insert(i).second) skipped_->add(why);
  }

  Manifest manifest_;
  std::shared_ptr<SkippedRecords> skipped_ = std::make_shared<SkippedRecords>();
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
  mutable std::set<int64_t> bad_;
};

}  // namespace mmlearn::data
