// BpeTokenizer against OpenAI CLIP's vocabulary and a Python reference of its algorithm
// (tests/fixtures/clip_tokenizer_reference.py -> clip_tokens.json), the trainer, and bad input files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/text/bpe.h"

namespace mmlearn::text {
namespace {
namespace fs = std::filesystem;

#ifdef MMLEARN_SHARED_DIR
const fs::path kSharedDir = MMLEARN_SHARED_DIR;
#else
const fs::path kSharedDir = "/work/shared";
#endif
#ifdef MMLEARN_SOURCE_DIR
const fs::path kSourceDir = MMLEARN_SOURCE_DIR;
#else
const fs::path kSourceDir = "/work/main";
#endif

const fs::path kClipDir = kSharedDir / "assets" / "clip";

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / str_cat("mmlearn_bpe_", ::getpid(), "_", info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

using test::error_of;

class BpeClipVocab : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (fs::exists(kClipDir / "vocab.json") && fs::exists(kClipDir / "merges.txt"))
      clip_ = new BpeTokenizer(BpeTokenizer::load(kClipDir));
  }
  static void TearDownTestSuite() {
    delete clip_;
    clip_ = nullptr;
  }
  void SetUp() override {
    if (!clip_) GTEST_SKIP() << "CLIP vocabulary not found in " << kClipDir;
  }
  static const BpeTokenizer& clip() { return *clip_; }

 private:
  static inline BpeTokenizer* clip_ = nullptr;
};

TEST_F(BpeClipVocab, SpecialIdsAndSize) {
  EXPECT_EQ(clip().vocab_size(), 49408);
  EXPECT_EQ(clip().sot_id(), 49406);
  EXPECT_EQ(clip().eot_id(), 49407);
  EXPECT_EQ(clip().merge_count(), 48894);
}

TEST_F(BpeClipVocab, PhotoOfACat) {
  EXPECT_EQ(clip().encode("a photo of a cat"), (std::vector<int64_t>{320, 1125, 539, 320, 2368}));
  std::vector<int64_t> expected = {49406, 320, 1125, 539, 320, 2368, 49407};
  expected.resize(77, 0);
  EXPECT_EQ(clip().encode_for_model("a photo of a cat", 77), expected);
  EXPECT_EQ(clip().tokens("a photo of a cat"),
            (std::vector<std::string>{"a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"}));
}

TEST_F(BpeClipVocab, MatchesPythonReference) {
  auto fixture = nlohmann::json::parse(read_file(kSourceDir / "tests" / "fixtures" / "clip_tokens.json"));
  ASSERT_GE(fixture["cases"].size(), 20u);
  for (const auto& c : fixture["cases"]) {
    std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(text);
    EXPECT_EQ(clip().encode(text), c["ids"].get<std::vector<int64_t>>());
  }
}

TEST_F(BpeClipVocab, DecodeInvertsEncodeUpToNormalization) {
  const std::pair<std::string, std::string> cases[] = {
      {"a photo of a cat", "a photo of a cat"},
      {"  A   Photo\tof\n a CAT  ", "a photo of a cat"},
      {"Caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9"
       "e",
       "caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9"
       "e"},
      {"\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x82\xBF\xE3\x83\xAF\xE3\x83\xBC",
       "\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x82\xBF\xE3\x83\xAF\xE3\x83\xBC"},
      {"i love \xF0\x9F\x8D\x95 and \xF0\x9F\x90\xB1", "i love \xF0\x9F\x8D\x95 and \xF0\x9F\x90\xB1"},
      {"it's 2024", "it 's 2 0 2 4"},  // words are re-joined with one space each
      {"Hello, World!", "hello , world !"},
  };
  for (const auto& [input, normalized] : cases) {
    SCOPED_TRACE(input);
    EXPECT_EQ(clip().decode(clip().encode(input)), normalized);
    EXPECT_EQ(clip().decode(clip().encode_for_model(input, 77)), normalized);
  }
}

TEST_F(BpeClipVocab, TruncationKeepsEndToken) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "word ";
  std::vector<int64_t> plain = clip().encode(text);
  ASSERT_GT(plain.size(), 77u);
  std::vector<int64_t> ids = clip().encode_for_model(text, 77);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids.front(), clip().sot_id());
  EXPECT_EQ(ids[76], clip().eot_id());
  EXPECT_TRUE(std::equal(ids.begin() + 1, ids.begin() + 76, plain.begin()));
  // Exactly full: no truncation, no padding.
  std::vector<int64_t> five = clip().encode_for_model("a photo of a cat", 7);
  EXPECT_EQ(five, (std::vector<int64_t>{49406, 320, 1125, 539, 320, 2368, 49407}));
  EXPECT_EQ(clip().encode_for_model("a photo of a cat", 2), (std::vector<int64_t>{49406, 49407}));
  EXPECT_THROW(clip().encode_for_model("a", 1), Error);
}

TEST_F(BpeClipVocab, SpecialTokensInTextAndBadIds) {
  EXPECT_EQ(clip().encode("<|startoftext|>cat<|endoftext|>"), (std::vector<int64_t>{49406, 2368, 49407}));
  EXPECT_NE(error_of([&] { clip().decode({320, 49408}); }).find("49408"), std::string::npos);
  EXPECT_THROW(clip().decode({-1}), Error);
  EXPECT_EQ(clip().decode({}), "");
  EXPECT_TRUE(clip().encode("").empty());
  EXPECT_TRUE(clip().encode(" \t\n ").empty());
}

TEST_F(BpeClipVocab, IllFormedUtf8DoesNotCrash) {
  std::vector<int64_t> ids = clip().encode("cat \xFF\xFE dog \xE2\x82");
  EXPECT_EQ(clip().decode(ids), "cat \xEF\xBF\xBD\xEF\xBF\xBD dog \xEF\xBF\xBD");
}

TEST_F(BpeClipVocab, ConcurrentEncodesAgree) {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i)
    texts.push_back(str_cat("caption number ", i, " shows item", i * 7919 % 1000));
  std::vector<std::vector<int64_t>> expected;
  for (const auto& t : texts) expected.push_back(clip().encode(t));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round)
        for (size_t i = t; i < texts.size() + t; ++i)
          if (clip().encode(texts[i % texts.size()]) != expected[i % texts.size()]) ++mismatches;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(BpeClipVocab, SaveWritesLoadableHuggingFaceFiles) {
  TempDir dir;
  clip().save(dir.path());
  BpeTokenizer again = BpeTokenizer::load(dir.path());
  EXPECT_EQ(again.vocab_size(), clip().vocab_size());
  for (const char* text : {"a photo of a cat", "it's 3 o'clock, caf\xC3\xA9 \xF0\x9F\x90\xB1"})
    EXPECT_EQ(again.encode(text), clip().encode(text));
  EXPECT_EQ(read_file(dir.path() / "merges.txt"), read_file(kClipDir / "merges.txt"));
}

std::vector<std::string> toy_corpus() {
  const char* subjects[] = {"cat", "dog", "horse", "bird", "photograph", "elephant"};
  const char* places[] = {"on a sofa", "in the garden", "near the river", "under a tree"};
  std::vector<std::string> texts;
  for (int i = 0; i < 600; ++i)
    texts.push_back(
        str_cat("A photograph of a ", subjects[i % 6], " ", places[(i / 6) % 4], ", image ", i % 13));
  return texts;
}

TEST(BpeTrainer, LearnsFrequentWordsAsSingleTokens) {
  BpeTokenizer tok = train_bpe(toy_corpus(), {.vocab_size = 570});
  EXPECT_EQ(tok.vocab_size(), 570);
  EXPECT_EQ(tok.sot_id(), 568);
  EXPECT_EQ(tok.eot_id(), 569);
  for (const char* word : {"photograph", "elephant", "garden", "the"})
    EXPECT_EQ(tok.tokens(word), std::vector<std::string>{str_cat(word, "</w>")}) << word;
  EXPECT_EQ(tok.decode(tok.encode("A photograph of a zebra!")), "a photograph of a zebra !");
  std::vector<int64_t> ids = tok.encode_for_model("a cat", 8);
  EXPECT_EQ(ids.front(), 568);
  EXPECT_EQ(ids[3], 569);
}

TEST(BpeTrainer, VocabularyLayoutMatchesClip) {
  TempDir dir;
  train_bpe(toy_corpus(), {.vocab_size = 530}).save(dir.path());
  auto ours = nlohmann::json::parse(read_file(dir.path() / "vocab.json"));
  EXPECT_EQ(ours.size(), 530u);
  EXPECT_EQ(ours["!"], 0);
  EXPECT_EQ(ours["!</w>"], 256);
  EXPECT_EQ(ours["<|endoftext|>"], 529);
  if (!fs::exists(kClipDir / "vocab.json")) GTEST_SKIP() << "CLIP vocabulary not found in " << kClipDir;
  auto clip = nlohmann::json::parse(read_file(kClipDir / "vocab.json"));
  int checked = 0;
  for (const auto& [token, id] : ours.items()) {
    if (id.get<int64_t>() >= 512) continue;
    EXPECT_EQ(clip[token], id) << token;
    ++checked;
  }
  EXPECT_EQ(checked, 512);
}

TEST(BpeTrainer, DeterministicAndRoundTripsThroughFiles) {
  TempDir dir;
  int64_t last_done = 0, calls = 0;
  BpeTokenizer first = train_bpe(toy_corpus(), {.vocab_size = 700}, [&](int64_t done, int64_t total) {
    EXPECT_EQ(done, last_done + 1);
    EXPECT_EQ(total, 700 - 514);
    last_done = done;
    ++calls;
  });
  EXPECT_EQ(calls, first.merge_count());
  BpeTokenizer second = train_bpe(toy_corpus(), {.vocab_size = 700});
  first.save(dir.path() / "a");
  second.save(dir.path() / "b");
  EXPECT_EQ(read_file(dir.path() / "a" / "vocab.json"), read_file(dir.path() / "b" / "vocab.json"));
  EXPECT_EQ(read_file(dir.path() / "a" / "merges.txt"), read_file(dir.path() / "b" / "merges.txt"));

  BpeTokenizer loaded = BpeTokenizer::load(dir.path() / "a");
  EXPECT_EQ(loaded.vocab_size(), first.vocab_size());
  for (const char* text : {"a photograph of a cat on a sofa", "unseen words: xylophone quartz 42",
                           "caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x90\xB1", "it's fine"}) {
    EXPECT_EQ(loaded.encode(text), first.encode(text)) << text;
    EXPECT_EQ(loaded.encode_for_model(text, 16), first.encode_for_model(text, 16)) << text;
  }
}

TEST(BpeTrainer, StopsAtMinFrequencyAndRejectsBadOptions) {
  BpeTokenizer tok = train_bpe({"abc abc", "xyz"}, {.vocab_size = 1000, .min_frequency = 2});
  // Only "a b" and "ab c</w>" occur twice.
  EXPECT_EQ(tok.merge_count(), 2);
  EXPECT_EQ(tok.vocab_size(), 516);
  EXPECT_EQ(tok.tokens("abc"), std::vector<std::string>{"abc</w>"});
  EXPECT_EQ(tok.tokens("xyz"), (std::vector<std::string>{"x", "y", "z</w>"}));
  EXPECT_NE(error_of([] { train_bpe({"a"}, {.vocab_size = 513}); }).find("at least 514"), std::string::npos);
  EXPECT_THROW(train_bpe({"a"}, {.vocab_size = 600, .min_frequency = 0}), Error);
  EXPECT_EQ(train_bpe({}, {.vocab_size = 600}).vocab_size(), 514);
}

TEST(BpeTrainer, TiesBreakOnSmallestPair) {
  // "b c" and "a b" both occur twice; "a b" sorts first.
  BpeTokenizer tok = train_bpe({"abc", "abc"}, {.vocab_size = 515});
  EXPECT_EQ(tok.tokens("abc"), (std::vector<std::string>{"ab", "c</w>"}));
}

// Malformed files: every error names the file (and the line, for merges.txt).
class BpeBadFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    train_bpe({"low lower lowest", "low low"}, {.vocab_size = 520}).save(dir_.path());
    vocab_ = nlohmann::json::parse(read_file(dir_.path() / "vocab.json"));
  }
  std::string load_error() {
    return error_of([&] { BpeTokenizer::load(dir_.path()); });
  }
  void write(const std::string& name, const std::string& content) {
    write_file_atomic(dir_.path() / name, content);
  }
  TempDir dir_;
  nlohmann::json vocab_;
};

TEST_F(BpeBadFiles, ValidFilesLoad) { EXPECT_NO_THROW(BpeTokenizer::load(dir_.path())); }

TEST_F(BpeBadFiles, MissingFiles) {
  EXPECT_NE(error_of([] { BpeTokenizer::load("/nonexistent/tokenizer"); }).find("vocab.json"),
            std::string::npos);
  fs::remove(dir_.path() / "merges.txt");
  EXPECT_NE(load_error().find("merges.txt"), std::string::npos);
}

TEST_F(BpeBadFiles, VocabNotJsonOrNotObject) {
  write("vocab.json", "{\"a\": 1,");
  EXPECT_NE(load_error().find("vocab.json: not valid JSON"), std::string::npos) << load_error();
  write("vocab.json", "[1, 2]");
  EXPECT_NE(load_error().find("expected a JSON object"), std::string::npos) << load_error();
}

TEST_F(BpeBadFiles, VocabNonIntegerOrDuplicateIds) {
  vocab_["!"] = "zero";
  write("vocab.json", vocab_.dump());
  EXPECT_NE(load_error().find("token \"!\": id must be an integer"), std::string::npos) << load_error();
  vocab_["!"] = 1.5;
  write("vocab.json", vocab_.dump());
  EXPECT_NE(load_error().find("id must be an integer"), std::string::npos) << load_error();
  vocab_["!"] = -3;
  write("vocab.json", vocab_.dump());
  EXPECT_NE(load_error().find("outside"), std::string::npos) << load_error();
  vocab_["!"] = 1;
  write("vocab.json", vocab_.dump());
  EXPECT_NE(load_error().find("id 1 is used by"), std::string::npos) << load_error();
}

TEST_F(BpeBadFiles, VocabWithoutSpecialTokens) {
  vocab_.erase("<|endoftext|>");
  write("vocab.json", vocab_.dump());
  EXPECT_NE(load_error().find("vocab.json has no <|endoftext|>: not a CLIP-style vocabulary"),
            std::string::npos)
      << load_error();
}

TEST_F(BpeBadFiles, MergeLineWithoutTwoSymbols) {
  std::string merges = read_file(dir_.path() / "merges.txt");  // line 1 header, line 2 first merge
  write("merges.txt", merges + "l o w\n");
  int64_t bad_line = std::count(merges.begin(), merges.end(), '\n') + 1;
  EXPECT_NE(load_error().find(str_cat("merges.txt:", bad_line, ": expected two symbols")), std::string::npos)
      << load_error();
  write("merges.txt", "#version: 0.2\nlo\n");
  EXPECT_NE(load_error().find("merges.txt:2: expected two symbols"), std::string::npos) << load_error();
}

TEST_F(BpeBadFiles, MergeSymbolNotInVocab) {
  write("merges.txt", "#version: 0.2\nl o\nq\xC3\xA9 w\n");
  EXPECT_NE(load_error().find("merges.txt:3: merge symbol \"q\xC3\xA9\" is not in"), std::string::npos)
      << load_error();
  write("merges.txt", "#version: 0.2\nw q\n");
  EXPECT_NE(load_error().find("merges.txt:2: merged token \"wq\" is not in"), std::string::npos)
      << load_error();
}

}  // namespace
}  // namespace mmlearn::text
