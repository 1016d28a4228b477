// The search index: exact search against brute force, approximate recall, persistence and the checks on
// reopening, a kill -9 in the middle of adds, and the `index` and `search` verbs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "../test_util.h"
#include "mmlearn/search/embedding_index.h"
#include "mmlearn/search/vector_index.h"

namespace mmlearn::search {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// n random unit vectors of dimension d, row-major; the same for the same seed (std::mt19937, no torch, so a
// forked child can make them too).
std::vector<float> unit_rows(int64_t n, int64_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i) {
    float norm = 0;
    for (int64_t j = 0; j < d; ++j) norm += std::pow(x[i * d + j] = normal(rng), 2.0f);
    for (int64_t j = 0; j < d; ++j) x[i * d + j] /= std::sqrt(norm);
  }
  return x;
}

// The ids of the k best rows of `x` for each query, by brute force.
std::vector<std::vector<int64_t>> brute_force(const std::vector<float>& x, const std::vector<float>& q,
                                              int64_t d, int64_t k, const std::vector<int64_t>& ids) {
  const auto X = torch::from_blob(const_cast<float*>(x.data()), {int64_t(x.size()) / d, d});
  const auto Q = torch::from_blob(const_cast<float*>(q.data()), {int64_t(q.size()) / d, d});
  const auto top = std::get<1>(Q.mm(X.t()).topk(k, 1));
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(Q.size(0)));
  for (int64_t i = 0; i < Q.size(0); ++i)
    for (int64_t j = 0; j < k; ++j) out[i].push_back(ids[top[i][j].item<int64_t>()]);
  return out;
}

double recall(const std::vector<std::vector<Hit>>& got, const std::vector<std::vector<int64_t>>& truth) {
  double found = 0, total = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    for (int64_t id : truth[i])
      for (const auto& h : got[i]) found += h.id == id;
    total += static_cast<double>(truth[i].size());
  }
  return found / total;
}

std::vector<int64_t> id_range(int64_t n, int64_t first) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[i] = first + 3 * i;
  return ids;
}

TEST(VectorIndex, FlatFindsWhatBruteForceFinds) {
  const int64_t n = 500, d = 32, k = 10;
  const auto x = unit_rows(n, d, 1), q = unit_rows(20, d, 2);
  const auto ids = id_range(n, 1000);
  VectorIndex index(IndexKind::flat, d);
  index.add(ids, x.data());
  const auto hits = index.search(q.data(), 20, k);
  const auto truth = brute_force(x, q, d, k, ids);
  for (size_t i = 0; i < truth.size(); ++i) {
    ASSERT_EQ(hits[i].size(), size_t(k));
    for (int64_t j = 0; j < k; ++j) EXPECT_EQ(hits[i][j].id, truth[i][j]) << "query " << i << " rank " << j;
  }
  // Saved and read back, it answers the same.
  const auto again = VectorIndex::deserialize(index.serialize(), IndexKind::flat, d).search(q.data(), 20, k);
  for (size_t i = 0; i < hits.size(); ++i)
    for (int64_t j = 0; j < k; ++j) EXPECT_EQ(again[i][j].id, hits[i][j].id);
  index.remove({ids[0], ids[1]});
  EXPECT_EQ(index.size(), n - 2);
}

TEST(VectorIndex, ApproximateKindsFindMostNeighbours) {
  const int64_t n = 3000, d = 32, k = 10;
  const auto x = unit_rows(n, d, 3), q = unit_rows(50, d, 4);
  const auto ids = id_range(n, 7);
  const auto truth = brute_force(x, q, d, k, ids);

  VectorIndex hnsw(IndexKind::hnsw, d);
  hnsw.add(ids, x.data());
  EXPECT_GE(recall(hnsw.search(q.data(), 50, k), truth), 0.95);
  EXPECT_FALSE(hnsw.can_remove());
  EXPECT_NE(test::error_of([&] { hnsw.remove({ids[0]}); }).find("cannot remove"), std::string::npos);

  VectorIndex ivfpq(IndexKind::ivfpq, d);
  EXPECT_NE(test::error_of([&] { ivfpq.add({1, 2}, x.data()); }).find("at least 1000"), std::string::npos);
  ivfpq.add(ids, x.data());
  const auto found = ivfpq.search(q.data(), 50, k);
  // 4 codes of 8 bits a vector and 16 of 54 lists scanned: coarse on random data, far above chance (k / n).
  EXPECT_GE(recall(found, truth), 0.3);
  const auto again = VectorIndex::deserialize(ivfpq.serialize(), IndexKind::ivfpq, d).search(q.data(), 50, k);
  EXPECT_EQ(again[0][0].id, found[0][0].id);

  // The same kind of lists holding whole vectors: what a scanned list holds is scored exactly, so it finds
  // more than the codes do (16 of 76 lists scanned; random vectors have no clusters, the worst case).
  VectorIndex ivf(IndexKind::ivf, d);
  ivf.add(ids, x.data());
  const double ivf_recall = recall(ivf.search(q.data(), 50, k), truth);
  EXPECT_GE(ivf_recall, 0.7);
  EXPECT_GT(ivf_recall, recall(found, truth));
  ivf.remove({ids[0]});
  EXPECT_EQ(ivf.size(), n - 1);
  EXPECT_NE(ivf.search(x.data(), 1, 1).front().front().id, ids[0]);

  EXPECT_NE(test::error_of([&] {
              VectorIndex::deserialize(hnsw.serialize(), IndexKind::flat, d);
            }).find("not a flat"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { VectorIndex::deserialize("not a FAISS index", IndexKind::flat, d); }),
            "(no error)");
}

TEST(VectorIndex, IvfAsksToBeTrainedAgainWhenTheCollectionOutgrowsItsLists) {
  const int64_t d = 16;
  const auto x = unit_rows(1000, d, 8);
  VectorIndex ivf(IndexKind::ivf, d);
  EXPECT_FALSE(ivf.needs_training(999));  // too few to learn lists from
  EXPECT_TRUE(ivf.needs_training(1000));
  ivf.add(id_range(1000, 0), x.data());
  EXPECT_EQ(ivf.lists(), 1000 / 39);
  EXPECT_FALSE(ivf.needs_training(1000));
  EXPECT_FALSE(ivf.needs_training(1900));
  EXPECT_TRUE(ivf.needs_training(2000));  // 51 lists would suit it: twice as many
  EXPECT_FALSE(VectorIndex(IndexKind::hnsw, d).needs_training(1000000));
}

IndexInfo small_info(IndexKind kind, int64_t dim) {
  return {.model = "/models/m", .model_type = "clip", .modality = "image", .kind = kind, .dim = dim};
}

std::vector<IndexItem> items_named(const std::string& prefix, int64_t n) {
  std::vector<IndexItem> items;
  for (int64_t i = 0; i < n; ++i) items.push_back({prefix + std::to_string(i), json{{"i", i}}});
  return items;
}

TEST(EmbeddingIndex, KeepsItemsAcrossReopeningAndRebuildsDamagedVectors) {
  const fs::path dir = test::temp_dir("index") / "idx";
  const int64_t d = 16;
  const auto x = unit_rows(60, d, 5);
  const auto probe = unit_rows(1, d, 6);
  {
    auto index = EmbeddingIndex::create(dir, small_info(IndexKind::flat, d), probe);
    index.add(items_named("k", 50), x.data());
    // A key held already is refused, and nothing of that add is kept.
    auto twice = items_named("n", 2);
    twice.push_back({"k3", json{}});
    EXPECT_NE(test::error_of([&] { index.add(twice, x.data() + 50 * d); }).find("already holds \"k3\""),
              std::string::npos);
    EXPECT_EQ(index.info().count, 50);
    EXPECT_EQ(index.remove({"k0", "k1", "missing"}), 2);
    index.save();
  }
  EXPECT_NE(test::error_of([&] {
              EmbeddingIndex::create(dir, small_info(IndexKind::flat, d), probe);
            }).find("already holds an index"),
            std::string::npos);
  auto answers = [&] {
    auto index = EmbeddingIndex::open(dir);
    EXPECT_EQ(index.info().count, 48);
    std::vector<std::string> keys;
    const auto hits = index.search(x.data() + 7 * d, 1, 5);
    for (const auto& h : hits.front()) keys.push_back(h.key);
    const auto first = index.search(x.data() + 7 * d, 1, 1).front().front();
    EXPECT_EQ(first.key, "k7");
    EXPECT_NEAR(first.score, 1.0, 1e-5);
    EXPECT_EQ(first.record, (json{{"i", 7}}));
    const auto all = index.search(x.data(), 1, 100).front();
    EXPECT_EQ(all.size(), 48u);
    for (const auto& h : all) EXPECT_TRUE(h.key != "k0" && h.key != "k1") << "removed, yet found: " << h.key;
    return keys;
  };
  const auto keys = answers();
  // A damaged vectors file is not read: the index is rebuilt from the database.
  {
    std::fstream f(dir / "vectors.faiss", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.write("garbage", 7);
  }
  EXPECT_EQ(answers(), keys);
  fs::remove(dir / "vectors.faiss");
  EXPECT_EQ(answers(), keys);

  auto index = EmbeddingIndex::open(dir);
  index.check_probe(probe, "same");
  EXPECT_NE(test::error_of([&] {
              index.check_probe(unit_rows(1, d, 9), "other-model");
            }).find("other-model does not embed as the model"),
            std::string::npos);
  EXPECT_EQ(to_json(index.info()), (json{{"count", 48},
                                         {"model", "/models/m"},
                                         {"model_type", "clip"},
                                         {"modality", "image"},
                                         {"kind", "flat"},
                                         {"dim", d}}));
}

TEST(EmbeddingIndex, HnswRemovesByRebuildingAndIvfpqTrainsOnceThereAreEnough) {
  const int64_t d = 16;
  const auto x = unit_rows(1200, d, 10), probe = unit_rows(1, d, 11);
  auto hnsw = EmbeddingIndex::create(test::temp_dir("hnsw") / "idx", small_info(IndexKind::hnsw, d), probe);
  hnsw.add(items_named("h", 100), x.data());
  EXPECT_EQ(hnsw.remove({"h5"}), 1);
  EXPECT_EQ(hnsw.search(x.data() + 6 * d, 1, 1).front().front().key, "h6");
  EXPECT_NE(hnsw.search(x.data() + 5 * d, 1, 1).front().front().key, "h5");

  auto ivf = EmbeddingIndex::create(test::temp_dir("ivfpq") / "idx", small_info(IndexKind::ivfpq, d), probe);
  ivf.add(items_named("v", 500), x.data());
  EXPECT_NE(test::error_of([&] { ivf.search(x.data(), 1, 1); }).find("at least 1000"), std::string::npos);
  auto more = items_named("w", 700);
  ivf.add(more, x.data() + 500 * d);
  EXPECT_EQ(ivf.search(x.data(), 1, 10).front().size(), 10u);
  EXPECT_EQ(ivf.info().count, 1200);

  // An ivf index trained on its first 1,000 items, then grown past 2,000, trains again on all of them: every
  // item, old or new, is its own nearest neighbour.
  const auto y = unit_rows(2100, d, 12);
  auto grown = EmbeddingIndex::create(test::temp_dir("ivf") / "idx", small_info(IndexKind::ivf, d), probe);
  grown.add(items_named("a", 1000), y.data());
  EXPECT_EQ(grown.info().lists, 1000 / 39);
  grown.add(items_named("b", 1100), y.data() + 1000 * d);
  EXPECT_EQ(grown.info().lists, 2100 / 39);
  for (const int64_t i : {0, 999, 1000, 2099})
    EXPECT_EQ(grown.search(y.data() + i * d, 1, 1).front().front().key,
              i < 1000 ? "a" + std::to_string(i) : "b" + std::to_string(i - 1000));
  EXPECT_EQ(grown.remove({"a0"}), 1);
  EXPECT_NE(grown.search(y.data(), 1, 1).front().front().key, "a0");
}

// A writer killed (SIGKILL) at a random moment of a stream of adds: the index opens, holds every add that
// returned before the kill (and perhaps the one under way, whole or not at all), and its vectors match.
TEST(EmbeddingIndex, KillDuringAddsLosesNothingAcknowledged) {
  const fs::path dir = test::temp_dir("kill") / "idx";
  const int64_t d = 16, per_add = 5;
  const auto probe = unit_rows(1, d, 1);
  EmbeddingIndex::create(dir, small_info(IndexKind::flat, d), probe);
  auto batch_items = [&](int64_t b) { return items_named("b" + std::to_string(b) + "-", per_add); };
  int acks[2];
  ASSERT_EQ(::pipe(acks), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(acks[0]);
    auto index = EmbeddingIndex::open(dir);
    for (int64_t b = 0;; ++b) {
      index.add(batch_items(b), unit_rows(per_add, d, static_cast<uint32_t>(100 + b)).data());
      if (b % 3 == 0) index.save();
      if (::write(acks[1], &b, sizeof b) != sizeof b) ::_exit(1);
    }
  }
  ::close(acks[1]);
  std::random_device entropy;
  const int64_t kill_after = 3 + static_cast<int64_t>(entropy() % 40);  // acknowledgements before the kill
  int64_t acknowledged = -1;
  for (int64_t b; acknowledged + 1 < kill_after && ::read(acks[0], &b, sizeof b) == sizeof b;)
    acknowledged = b;
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_EQ(acknowledged + 1, kill_after);
  // The child may have returned from more adds before the kill landed (a loaded machine runs it ahead of this
  // reader): their acknowledgements wait in the pipe, and count too.
  for (int64_t b; ::read(acks[0], &b, sizeof b) == sizeof b;) acknowledged = b;
  ::close(acks[0]);

  auto index = EmbeddingIndex::open(dir);
  const int64_t count = index.info().count;
  EXPECT_TRUE(count == per_add * (acknowledged + 1) || count == per_add * (acknowledged + 2)) << count;
  for (int64_t b = 0; b <= acknowledged; ++b) {
    for (const auto& item : batch_items(b)) EXPECT_TRUE(index.contains(item.key)) << item.key;
    const auto rows = unit_rows(per_add, d, static_cast<uint32_t>(100 + b));
    const auto first = index.search(rows.data() + 2 * d, 1, 1).front().front();
    EXPECT_EQ(first.key, "b" + std::to_string(b) + "-2");
  }
  EXPECT_EQ(index.search(probe.data(), 1, 1000).front().size(), static_cast<size_t>(count));
}

// The verbs, on a clip-tiny model trained for a few steps.
class SearchCli : public ::testing::Test {
 protected:
  static fs::path dir_;
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / "mmlearn-tests" / ("search-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    auto r = test::run_cli(
        str_cat("data shapes --out ", (dir_ / "shapes").string(), " --train 64 --test 40 --seed 3"));
    ASSERT_EQ(r.status, 0) << r.output;
    for (const auto& [out, seed] : {std::pair{"run", 1}, {"other", 2}}) {
      r = test::run_cli(str_cat("train --preset clip-tiny --data ", (dir_ / "shapes").string(), " --out ",
                                (dir_ / out).string(), " --steps 2 --batch-size 16 --seed ", seed));
      ASSERT_EQ(r.status, 0) << r.output;
    }
  }
  static std::string path(const std::string& p) { return (dir_ / p).string(); }
};
fs::path SearchCli::dir_;

TEST_F(SearchCli, BuildsSearchesAndContinues) {
  const std::string build =
      str_cat("index build --model ", path("run"), " --data ", path("shapes/test.jsonl"), " --out ",
              path("idx"), " --batch-size 16 --json");
  auto r = test::run_cli(build);
  ASSERT_EQ(r.status, 0) << r.output;
  auto summary = json::parse(r.output);
  EXPECT_EQ(summary["added"], 40);
  EXPECT_EQ(summary["index"]["modality"], "image");
  EXPECT_EQ(summary["index"]["count"], 40);

  // Built again: nothing to add, everything already there.
  r = test::run_cli(build);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["already"], 40);

  r = test::run_cli("index info --json --index " + path("idx"));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto info = json::parse(r.output);
  for (const char* key : {"count", "model", "kind", "dim"}) EXPECT_TRUE(info.contains(key)) << key;
  EXPECT_EQ(info["kind"], "flat");

  // An image finds itself first.
  const std::string image = path("shapes/images/test/000007.png");
  r = test::run_cli(str_cat("search --index ", path("idx"), " --image ", image, " --k 3 --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  auto results = json::parse(r.output)["results"];
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0]["key"], fs::absolute(image).lexically_normal().string());
  EXPECT_NEAR(results[0]["score"].get<double>(), 1.0, 1e-4);
  EXPECT_TRUE(results[0]["record"]["text"].is_string());

  r = test::run_cli(str_cat("search --index ", path("idx"), " --text 'a red circle' --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  results = json::parse(r.output)["results"];
  ASSERT_EQ(results.size(), 10u);
  for (size_t i = 1; i < results.size(); ++i) EXPECT_GE(results[i - 1]["score"], results[i]["score"]);

  r = test::run_cli(
      str_cat("index add --index ", path("idx"), " --data ", path("shapes/train.jsonl"), " --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["index"]["count"], 104);
  r = test::run_cli(str_cat("index remove --index ", path("idx"), " --key ", image, " --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["removed"], 1);
}

TEST_F(SearchCli, RefusesBadQueriesAndAnotherModel) {
  auto r = test::run_cli(str_cat("index build --model ", path("run"), " --data ", path("shapes/test.jsonl"),
                                 " --out ", path("idx2")));
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string search = "search --index " + path("idx2");
  for (const char* bad :
       {" --text hi --k 0", " --text hi --k 1001", " --text hi --audio x.wav", "", " --text ''"})
    EXPECT_EQ(test::run_cli(search + bad).status, 2) << bad;
  r = test::run_cli(search + " --text hi --model " + path("other"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("does not embed as the model"), std::string::npos) << r.output;
  r = test::run_cli("search --text hi --index " + path("nothing"));
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("holds no index"), std::string::npos) << r.output;
  r = test::run_cli(str_cat("index build --model ", path("run"), " --data ", path("shapes/test.jsonl"),
                            " --out ", path("idx3"), " --kind annoy"));
  EXPECT_EQ(r.status, 2) << r.output;
}

}  // namespace
}  // namespace mmlearn::search
