// Whisper's tokenizer against tests/fixtures/whisper_reference.py, which encodes with its own implementation
// of tiktoken's algorithm on the real *.tiktoken files and writes Hugging Face's files from them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/text/whisper_tokenizer.h"

using namespace mmlearn;
using namespace mmlearn::text;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class WhisperTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { root_ = test::whisper_fixture(); }
  void SetUp() override {
    if (!fs::exists(test::whisper_assets() / "multilingual.tiktoken"))
      GTEST_SKIP() << "Whisper's tokenizer files not found in " << test::whisper_assets();
    ASSERT_FALSE(root_.empty())
        << "tests/fixtures/whisper_reference.py failed (it needs /usr/bin/python3 with "
           "torch and numpy, and ffmpeg)";
    reference_ = read_json_file(root_ / "tokenizer.json");
  }
  // Everything the reference wrote about one encoding, checked against `tok`.
  static void expect_matches(const WhisperTokenizer& tok, const json& e, bool check_pieces) {
    EXPECT_EQ(tok.vocab_size(), e["n_vocab"].get<int64_t>());
    EXPECT_EQ(tok.eot, e["eot"].get<int64_t>());
    EXPECT_EQ(tok.sot, e["sot"].get<int64_t>());
    EXPECT_EQ(tok.timestamp_begin, e["timestamp_begin"].get<int64_t>());
    for (const auto& [name, id] : e["special_tokens"].items()) {
      if (name.rfind("<|", 0) == 0 && std::isdigit(static_cast<unsigned char>(name[2]))) {
        EXPECT_EQ(tok.token_text(id.get<int64_t>()), name);  // a timestamp
      } else {
        EXPECT_EQ(tok.special(name), std::optional<int64_t>(id.get<int64_t>())) << name;
      }
    }
    for (const auto& c : e["encode"]) {
      const auto text = c["text"].get<std::string>();
      EXPECT_EQ(tok.encode(text), c["ids"].get<std::vector<int64_t>>()) << text;
      if (check_pieces)
        EXPECT_EQ(gpt2_pre_tokenize(text), c["pieces"].get<std::vector<std::string>>()) << text;
    }
    for (const auto& c : e["decode"]) {
      const auto ids = c["ids"].get<std::vector<int64_t>>();
      const auto got = c["method"] == "decode" ? tok.decode(ids, true) : tok.decode_with_timestamps(ids);
      EXPECT_EQ(got, c["text"].get<std::string>()) << c.dump();
    }
    EXPECT_EQ(tok.non_speech_tokens(), e["non_speech_tokens"].get<std::vector<int64_t>>());
    EXPECT_EQ(tok.sot_sequence("en", "transcribe"),
              e["sot_sequence_en_transcribe"].get<std::vector<int64_t>>());
  }
  static inline fs::path root_;
  json reference_;
};

}  // namespace

TEST_F(WhisperTokenizerTest, TiktokenFilesMatchTheReferenceInEveryEncoding) {
  for (const auto& [name, e] : reference_["encodings"].items()) {
    SCOPED_TRACE(name);
    auto tok = WhisperTokenizer::from_tiktoken(test::whisper_assets() / e["tiktoken_file"].get<std::string>(),
                                               e["num_languages"].get<int>());
    expect_matches(tok, e, true);
    // load() derives the language count from the model's vocabulary size, as OpenAI's loader does.
    auto loaded = WhisperTokenizer::load(test::whisper_assets(), e["n_vocab"].get<int64_t>());
    EXPECT_EQ(loaded.vocab_size(), tok.vocab_size());
  }
}

TEST_F(WhisperTokenizerTest, HuggingFaceFilesAndSavedTiktokenGiveTheSameTokenizer) {
  const json& e = reference_["encodings"]["multilingual"];
  auto hf = WhisperTokenizer::from_hf_dir(root_ / "tiny_80" / "hf");
  expect_matches(hf, e, false);
  auto dir = test::temp_dir("saved");
  hf.save_tiktoken(dir / "tokenizer.tiktoken");
  expect_matches(WhisperTokenizer::from_tiktoken(dir / "tokenizer.tiktoken", 99), e, false);
  // large-v3's layout: 100 languages, everything after them one id later.
  expect_matches(WhisperTokenizer::from_hf_dir(root_ / "tiny_128" / "hf"),
                 reference_["encodings"]["multilingual_v3"], false);
}

TEST_F(WhisperTokenizerTest, BadFilesGetClearErrors) {
  auto dir = test::temp_dir("bad");
  auto write = [&](const std::string& name, const std::string& text) {
    write_file_atomic(dir / name, text);
    return dir / name;
  };
  EXPECT_NE(test::error_of([&] {
              WhisperTokenizer::from_tiktoken(write("a.tiktoken", "QQ== 0\n!!!! 1\n"), 0);
            }).find("a.tiktoken:2: the token is not valid base64"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              WhisperTokenizer::from_tiktoken(write("b.tiktoken", "QQ== 0\nQg== 2\n"), 0);
            }).find("rank 1 is missing"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              WhisperTokenizer::from_tiktoken(write("c.tiktoken", "QQ== 0\n"), 0);
            }).find("has no token"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { WhisperTokenizer::load(dir / "nothing", 51865); }).find("no tokenizer here"),
            std::string::npos);
  auto tok = WhisperTokenizer::from_tiktoken(test::whisper_assets() / "multilingual.tiktoken", 99);
  EXPECT_NE(test::error_of([&] { tok.language_token("xx"); }).find("unknown language \"xx\""),
            std::string::npos);
}
