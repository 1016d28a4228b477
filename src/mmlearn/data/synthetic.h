// What the synthetic worlds (shapes, mood) share: a random stream that is the same on every platform, one
// per record, and a writer that makes records on several threads but writes the manifest in index order —
// so a data set is a pure function of its config, byte-identical across runs and thread counts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace mmlearn::data {

// splitmix64 (Steele, Lea, Flood 2014): a stable mixing function. The std:: distributions are not used
// because their algorithms are implementation-defined.
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next() { return mix64(state_ += kGolden); }
  // Uniform integer in [0, n) by multiply-shift (Lemire); the bias, n / 2^64, is immaterial here.
  int below(int n) { return int((static_cast<unsigned __int128>(next()) * uint64_t(n)) >> 64); }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1) with 53 random bits
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool chance(double p) { return uniform() < p; }

 private:
  uint64_t state_;
};

struct Split {
  const char* name;
  uint64_t tag;  // distinct per split so that train and test streams differ
};
inline constexpr Split kTrainSplit{"train", 0x747261696eULL}, kTestSplit{"test", 0x74657374ULL};

inline uint64_t record_seed(uint64_t seed, const Split& split, int64_t index) {
  return mix64(mix64(mix64(seed + kGolden) ^ split.tag) + uint64_t(index) * kGolden);
}

std::string index_name(int64_t index);  // "000042"

// Writes an image or audio file of a record (plainly: media are regenerable), or throws naming the path.
void write_media(const std::filesystem::path& path, const std::string& bytes);

// Writes `manifest` (atomically) with records 0..n-1, each made by make_record(i) (which may write media
// files and returns its JSONL line) on `threads` workers; on_written(done) is called on the calling thread.
// The first exception from make_record stops the work and is rethrown; the manifest is then not written.
void write_records(const std::filesystem::path& manifest, int64_t n, int threads,
                   const std::function<std::string(int64_t)>& make_record,
                   const std::function<void(int64_t done)>& on_written);

// Readies `out_dir` for a new data set. A directory that already holds one (manifests, images/, audio/) is
// refused, unless `overwrite`, which removes what a set is made of first, so that no stale file of the old
// set stays beside the new one. Anything else in the directory is left as it is.
void prepare_data_dir(const std::filesystem::path& out_dir, bool overwrite);

}  // namespace mmlearn::data
