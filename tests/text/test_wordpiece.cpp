// BERT's WordPiece tokenizer against the reference (tests/fixtures/wordpiece_reference.py ->
// wordpiece_cases.json): the same words and ids for texts that exercise cleaning, CJK, accents, case,
// punctuation, special tokens, unknown and over-long words; the same vocabulary read from vocab.txt and from
// tokenizer.json; bad files named.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/text/wordpiece.h"

namespace mmlearn::text {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const json& cases() {
  static const json j =
      json::parse(read_file(test::source_dir() / "tests" / "fixtures" / "wordpiece_cases.json"));
  return j;
}

// The fixture's vocabulary as Hugging Face ships it: vocab.txt (+ added_tokens.json for [DEC], [ENC]) in
// one directory, tokenizer.json in another.
std::pair<fs::path, fs::path> vocabulary_dirs() {
  const fs::path dir = test::temp_dir("wordpiece");
  const auto vocab = cases()["vocab"].get<std::vector<std::string>>();
  fs::create_directories(dir / "txt");
  fs::create_directories(dir / "json");
  std::ofstream txt(dir / "txt" / "vocab.txt");
  json model_vocab = json::object(), added = json::object(), added_list = json::array();
  for (size_t i = 0; i < vocab.size(); ++i) {
    const bool extra = vocab[i] == "[DEC]" || vocab[i] == "[ENC]";
    if (extra) {
      added[vocab[i]] = i;
    } else {
      txt << vocab[i] << "\n";
      model_vocab[vocab[i]] = i;
    }
    if (extra || vocab[i].front() == '[')
      added_list.push_back({{"id", i}, {"content", vocab[i]}, {"special", true}});
  }
  txt.close();
  std::ofstream(dir / "txt" / "added_tokens.json") << added.dump();
  std::ofstream(dir / "txt" / "tokenizer_config.json") << R"({"do_lower_case": true, "strip_accents": null})";
  const json tokenizer = {{"normalizer",
                           {{"type", "BertNormalizer"},
                            {"lowercase", true},
                            {"strip_accents", nullptr},
                            {"handle_chinese_chars", true},
                            {"clean_text", true}}},
                          {"added_tokens", added_list},
                          {"model",
                           {{"type", "WordPiece"},
                            {"unk_token", "[UNK]"},
                            {"continuing_subword_prefix", "##"},
                            {"max_input_chars_per_word", 100},
                            {"vocab", model_vocab}}}};
  std::ofstream(dir / "json" / "tokenizer.json") << tokenizer.dump();
  return {dir / "txt", dir / "json"};
}

TEST(WordPiece, MatchesTheReferenceFromVocabTxtAndTokenizerJson) {
  const auto [txt, tokenizer_json] = vocabulary_dirs();
  for (const fs::path& dir : {txt, tokenizer_json}) {
    const auto tok = WordPieceTokenizer::load(dir);
    EXPECT_EQ(tok.vocab_size(), int64_t(cases()["vocab"].size())) << dir;
    for (const auto& c : cases()["cases"]) {
      const std::string text = c["text"];
      EXPECT_EQ(tok.basic_tokens(text), c["basic"].get<std::vector<std::string>>()) << dir << ": " << text;
      EXPECT_EQ(tok.encode(text), c["ids"].get<std::vector<int64_t>>()) << dir << ": " << text;
      EXPECT_EQ(tok.decode(c["ids"].get<std::vector<int64_t>>()), c["decoded"].get<std::string>()) << text;
    }
    const auto ids = tok.encode_with_specials("what is");
    EXPECT_EQ(ids.front(), tok.id("[CLS]"));
    EXPECT_EQ(ids.back(), tok.id("[SEP]"));
    EXPECT_EQ(tok.find("[DEC]"), int64_t(cases()["vocab"].size()) - 2);
  }
}

TEST(WordPiece, BadFilesAreNamed) {
  const fs::path dir = test::temp_dir("wordpiece-bad");
  auto error_for = [&](const std::string& name, const std::string& bytes) {
    fs::create_directories(dir / name);
    const fs::path file =
        dir / name / (name.find("json") != std::string::npos ? "tokenizer.json" : "vocab.txt");
    std::ofstream(file) << bytes;
    return test::error_of([&] { WordPieceTokenizer::load(dir / name); });
  };
  EXPECT_NE(error_for("empty", "").find("empty vocabulary"), std::string::npos);
  EXPECT_NE(error_for("json-bad", "{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_for("json-bpe", R"({"model": {"type": "BPE", "vocab": {}}})").find("is not WordPiece"),
            std::string::npos);
  EXPECT_NE(error_for("json-gap", R"({"model": {"type": "WordPiece", "vocab": {"a": 0, "b": 2}}})")
                .find("no token has id 1"),
            std::string::npos);
  EXPECT_NE(error_for("json-id", R"({"model": {"type": "WordPiece", "vocab": {"a": -3}}})").find("has id -3"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { WordPieceTokenizer::load(dir / "none"); }).find("no such file"),
            std::string::npos);
  fs::create_directories(dir / "nothing");
  EXPECT_NE(test::error_of([&] {
              WordPieceTokenizer::load(dir / "nothing");
            }).find("no vocab.txt or tokenizer.json"),
            std::string::npos);
  // A vocabulary without [UNK] tokenizes what it covers, and names what it lacks for the rest.
  fs::create_directories(dir / "no-unk");
  std::ofstream(dir / "no-unk" / "vocab.txt") << "a\n##b\n";
  const auto tok = WordPieceTokenizer::load(dir / "no-unk");
  EXPECT_EQ(tok.encode("ab"), (std::vector<int64_t>{0, 1}));
  EXPECT_NE(test::error_of([&] { tok.encode("c"); }).find("has no unknown token [UNK]"), std::string::npos);
}

}  // namespace
}  // namespace mmlearn::text
