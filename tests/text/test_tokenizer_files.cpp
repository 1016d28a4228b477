// load_clip_tokenizer: OpenAI's .txt.gz and Hugging Face's tokenizer.json give the same vocabulary and merges
// as vocab.json + merges.txt (CLIP's real files when present, a small trained vocabulary always), directories
// resolve by preference, and bad files fail with errors that name them.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/text/tokenizer_files.h"

namespace mmlearn::text {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kClipAssets = test::shared_dir() / "assets" / "clip";

std::string error_of(const fs::path& path) {
  return test::error_of([&] { load_clip_tokenizer(path); });
}

// Whether a and b have the same token for every id and the same merges in the same order: save() writes
// both out in full.
void expect_same_vocabulary(const BpeTokenizer& a, const BpeTokenizer& b) {
  const fs::path dir = test::temp_dir("compare");
  a.save(dir / "a");
  b.save(dir / "b");
  EXPECT_EQ(read_file(dir / "a" / "vocab.json"), read_file(dir / "b" / "vocab.json"));
  EXPECT_EQ(read_file(dir / "a" / "merges.txt"), read_file(dir / "b" / "merges.txt"));
}

// The parts of CLIP's tokenizer.json that matter here, from a vocab.json + merges.txt pair; merges as "a b"
// strings or, as tokenizers >= 0.20 writes them, [a, b] pairs. The special tokens are in model.vocab and
// added_tokens (as in openai/clip-vit-base-patch32's file), or only in added_tokens.
json tokenizer_json(const fs::path& hf_dir, bool pair_merges, bool specials_in_vocab) {
  json vocab = json::parse(read_file(hf_dir / "vocab.json"));
  json added = json::array();
  for (std::string_view special : {kStartOfText, kEndOfText}) {
    const std::string token(special);
    added.push_back({{"id", vocab[token]}, {"content", token}, {"special", true}, {"normalized", true}});
    if (!specials_in_vocab) vocab.erase(token);
  }
  json merges = json::array();
  const std::string text = read_file(hf_dir / "merges.txt");
  for (size_t pos = text.find('\n') + 1; pos < text.size();) {  // after the "#version" line
    const size_t eol = text.find('\n', pos);
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    const size_t space = line.find(' ');
    merges.push_back(pair_merges ? json::array({line.substr(0, space), line.substr(space + 1)}) : json(line));
  }
  return {{"added_tokens", added},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", kEndOfText},
            {"continuing_subword_prefix", ""},
            {"end_of_word_suffix", "</w>"},
            {"fuse_unk", false},
            {"vocab", vocab},
            {"merges", merges}}}};
}

class ClipFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* file : {"vocab.json", "merges.txt", "bpe_simple_vocab_16e6.txt.gz"})
      if (!fs::exists(kClipAssets / file)) GTEST_SKIP() << "CLIP vocabulary not found in " << kClipAssets;
  }
  // Each fixture text's ids as computed by tests/fixtures/clip_tokenizer_reference.py.
  static void expect_reference_ids(const BpeTokenizer& tok) {
    const json fixture =
        json::parse(read_file(test::source_dir() / "tests" / "fixtures" / "clip_tokens.json"));
    ASSERT_GE(fixture["cases"].size(), 20u);
    for (const auto& c : fixture["cases"])
      EXPECT_EQ(tok.encode(c["text"].get<std::string>()), c["ids"].get<std::vector<int64_t>>()) << c["text"];
  }
};

TEST_F(ClipFiles, OpenAiGzipEqualsVocabJsonAndMerges) {
  const BpeTokenizer gz = load_clip_tokenizer(kClipAssets / "bpe_simple_vocab_16e6.txt.gz");
  EXPECT_EQ(gz.vocab_size(), 49408);
  EXPECT_EQ(gz.merge_count(), 48894);  // of the file's 262145: CLIP reads only these
  EXPECT_EQ(gz.sot_id(), 49406);
  EXPECT_EQ(gz.eot_id(), 49407);
  expect_same_vocabulary(gz, BpeTokenizer::load(kClipAssets));
  expect_reference_ids(gz);
}

TEST_F(ClipFiles, TokenizerJsonEqualsVocabJsonAndMerges) {
  const BpeTokenizer hf = BpeTokenizer::load(kClipAssets);
  const fs::path dir = test::temp_dir("hf");
  for (bool pair_merges : {false, true}) {
    SCOPED_TRACE(pair_merges ? "[a, b] merges, specials in added_tokens only" : "\"a b\" merges");
    write_file_atomic(dir / "tokenizer.json", tokenizer_json(kClipAssets, pair_merges, !pair_merges).dump());
    const BpeTokenizer tok = load_clip_tokenizer(dir);
    expect_same_vocabulary(tok, hf);
    expect_reference_ids(tok);
  }
}

// A small vocabulary trained here, so that these tests run without CLIP's files.
class TokenizerFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("files");
    std::vector<std::string> captions;
    for (const char* subject : {"cat", "dog", "horse", "bird"})
      for (const char* place : {"on a sofa", "in the garden", "near the river"})
        captions.push_back(str_cat("a photograph of a ", subject, " ", place));
    trained_ = std::make_unique<BpeTokenizer>(train_bpe(captions, {.vocab_size = 560}));
    trained_->save(dir_ / "hf");
  }
  fs::path write(const fs::path& relative, std::string_view content) {
    fs::create_directories((dir_ / relative).parent_path());
    write_file_atomic(dir_ / relative, content);
    return dir_ / relative;
  }
  // OpenAI's layout: merges.txt, gzip-compressed.
  std::string openai_gz() const { return test::gzip(read_file(dir_ / "hf" / "merges.txt")); }

  fs::path dir_;
  std::unique_ptr<BpeTokenizer> trained_;
};

TEST_F(TokenizerFiles, EveryLayoutGivesTheTrainedVocabulary) {
  ASSERT_GT(trained_->merge_count(), 10);
  expect_same_vocabulary(load_clip_tokenizer(write("gz/anything.txt.gz", openai_gz())), *trained_);
  expect_same_vocabulary(load_clip_tokenizer(dir_ / "gz"), *trained_);  // the only *.txt.gz there
  write("json/tokenizer.json", tokenizer_json(dir_ / "hf", true, true).dump());
  expect_same_vocabulary(load_clip_tokenizer(dir_ / "json"), *trained_);
  expect_same_vocabulary(
      load_clip_tokenizer(write("named.json", read_file(dir_ / "json" / "tokenizer.json"))), *trained_);
  expect_same_vocabulary(load_clip_tokenizer(dir_ / "hf"), *trained_);
  expect_same_vocabulary(load_clip_tokenizer(dir_ / "hf" / "vocab.json"), *trained_);
  expect_same_vocabulary(load_clip_tokenizer(dir_ / "hf" / "merges.txt"), *trained_);
  EXPECT_EQ(load_clip_tokenizer(dir_ / "gz").encode("a photo of cats"), trained_->encode("a photo of cats"));
}

TEST_F(TokenizerFiles, DirectoryPrefersVocabJsonThenTokenizerJsonThenGzip) {
  // Each better layout is added in turn: the vocabulary that loads, or a broken file left unread, shows which
  // one was chosen.
  const BpeTokenizer smaller = train_bpe({"a photo of a cat"}, {.vocab_size = 520});
  smaller.save(dir_ / "tmp");
  write("pick/bpe_simple_vocab_16e6.txt.gz", test::gzip(read_file(dir_ / "tmp" / "merges.txt")));
  write("pick/other.txt.gz", "not even gzip");
  expect_same_vocabulary(load_clip_tokenizer(dir_ / "pick"), smaller);
  write("pick/tokenizer.json", tokenizer_json(dir_ / "hf", false, true).dump());
  expect_same_vocabulary(load_clip_tokenizer(dir_ / "pick"), *trained_);
  trained_->save(dir_ / "pick");
  write("pick/tokenizer.json", "{ not json");
  expect_same_vocabulary(load_clip_tokenizer(dir_ / "pick"), *trained_);
}

TEST_F(TokenizerFiles, NothingToReadSaysWhatWasLookedFor) {
  fs::create_directories(dir_ / "empty");
  const std::string empty = error_of(dir_ / "empty");
  EXPECT_NE(empty.find((dir_ / "empty").string() + " holds no tokenizer files: looked for vocab.json + "
                                                   "merges.txt, tokenizer.json, bpe_simple_vocab_16e6.txt.gz "
                                                   "and *.txt.gz"),
            std::string::npos)
      << empty;
  write("only_vocab/vocab.json", read_file(dir_ / "hf" / "vocab.json"));
  EXPECT_NE(error_of(dir_ / "only_vocab").find("holds no tokenizer files"), std::string::npos);
  EXPECT_NE(error_of(dir_ / "only_vocab" / "vocab.json")
                .find("merges.txt beside it, but " + (dir_ / "only_vocab" / "merges.txt").string() +
                      " does not exist"),
            std::string::npos)
      << error_of(dir_ / "only_vocab" / "vocab.json");
  write("two/a.txt.gz", openai_gz());
  write("two/b.txt.gz", openai_gz());
  EXPECT_NE(error_of(dir_ / "two").find("holds several *.txt.gz files (a.txt.gz, b.txt.gz)"),
            std::string::npos)
      << error_of(dir_ / "two");
  EXPECT_NE(error_of(dir_ / "missing").find((dir_ / "missing").string() + " does not exist"),
            std::string::npos);
  EXPECT_NE(error_of(write("model.bin", "x")).find("model.bin: not a tokenizer file"), std::string::npos);
}

TEST_F(TokenizerFiles, BadOpenAiFilesNameFileAndLine) {
  const std::string merges = read_file(dir_ / "hf" / "merges.txt");
  const std::string gz = openai_gz();
  const std::pair<std::string, std::string> cases[] = {
      {gz.substr(0, gz.size() - 10), ": truncated gzip file"},
      {merges, ": not a gzip file"},
      {test::gzip("i n\nt h\n"), ":1: expected a \"#version\" header, got \"i n\""},
      {test::gzip("#version: 0.2\ni n\nt h e\n"),
       ":3: expected two symbols separated by one space, got \"t h e\""},
      {test::gzip("#version: 0.2\ni n\n\nt h\n"), ":3: expected two symbols"},
      {test::gzip("#version: 0.2\ni n\nxy z\n"), ": merge 2: merge symbol \"xy\" is not in"},
      {test::gzip("#version: 0.2\ni n\ni n\n"), ": token \"in\" has two ids, 512 and 513"},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const fs::path path = write(str_cat("bad", i, ".txt.gz"), cases[i].first);
    EXPECT_NE(error_of(path).find(path.string() + cases[i].second), std::string::npos)
        << i << ": " << error_of(path);
  }
}

TEST_F(TokenizerFiles, BadTokenizerJsonNamesFileAndField) {
  const json good = tokenizer_json(dir_ / "hf", false, true);
  auto with = [&](const std::function<void(json&)>& change) {
    json doc = good;
    change(doc);
    return doc.dump();
  };
  const std::pair<std::string, std::string> cases[] = {
      {"{\"model\": ", ": not valid JSON"},
      {"[]", ": expected a JSON object, got array"},
      {with([](json& d) { d.erase("model"); }), ": missing field model (not a Hugging Face tokenizer.json?)"},
      {with([](json& d) { d["model"]["type"] = "WordPiece"; }),
       ": model.type is \"WordPiece\": only BPE models can be read"},
      {with([](json& d) { d["model"].erase("type"); }), ": model.type is null: only BPE models"},
      {with([](json& d) { d["model"]["end_of_word_suffix"] = nullptr; }),
       ": model.end_of_word_suffix is null"},
      {with([](json& d) { d["model"]["continuing_subword_prefix"] = "##"; }),
       ": model.continuing_subword_prefix is \"##\", but CLIP's tokenizer has none"},
      {with([](json& d) { d["model"]["dropout"] = 0.1; }), ": model.dropout is 0.1"},
      {with([](json& d) { d["model"].erase("vocab"); }), ": missing field model.vocab"},
      {with([](json& d) { d["model"]["vocab"] = json::array(); }), ": model.vocab must be object, got array"},
      {with([](json& d) { d["model"]["vocab"]["!"] = "0"; }), ": model.vocab[\"!\"]: id must be an integer"},
      {with([](json& d) { d["model"]["vocab"]["!"] = -1; }), ": model.vocab[\"!\"]: id -1 is outside"},
      {with([](json& d) { d["model"].erase("merges"); }), ": missing field model.merges"},
      {with([](json& d) { d["model"]["merges"][1] = "a b c"; }),
       ": model.merges[1]: expected \"a b\" or [\"a\", \"b\"], got \"a b c\""},
      {with([](json& d) {
         d["model"]["merges"][2] = json::array({"a", 1});
       }),
       ": model.merges[2]: expected"},
      {with([](json& d) { d["model"]["merges"][0] = "q z"; }),
       " model.merges: merge 1: merged token \"qz\" is not in "},
      {with([](json& d) { d["added_tokens"][0]["id"] = 0; }),
       ": added_tokens[0].id: id 0 is used by \"!\" and \"<|startoftext|>\""},
      {with([](json& d) { d["added_tokens"][1].erase("content"); }),
       ": missing field added_tokens[1].content"},
      {with([](json& d) { d["added_tokens"] = json::object(); }), ": added_tokens must be array, got object"},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const fs::path path = write(str_cat(i, "/tokenizer.json"), cases[i].first);
    EXPECT_NE(error_of(path).find(path.string() + cases[i].second), std::string::npos)
        << i << ": " << error_of(path);
  }
}

}  // namespace
}  // namespace mmlearn::text
