#include "mmlearn/text/tokenizer_files.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/gzip.h"

namespace mmlearn::text {
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace {

using Merge = std::pair<std::string, std::string>;

constexpr std::string_view kOpenAiVocab = "bpe_simple_vocab_16e6.txt.gz";
// simple_tokenizer.py keeps lines[1 : 49152 - 256 - 2 + 1]: the merges that, with the 512 byte tokens and
// the 2 special tokens, make CLIP's 49408-token vocabulary. bpe_simple_vocab_16e6.txt.gz holds 262145
// merges; CLIP never uses the others.
constexpr size_t kOpenAiMerges = 49152 - 256 - 2;

// Start of a value for an error message: a line or JSON value from a bad file can be arbitrarily long.
std::string excerpt(std::string_view text) {
  return text.size() > 40 ? str_cat(text.substr(0, 40), "...") : std::string(text);
}

// "a b" as merges.txt writes a merge: two non-empty symbols separated by one space.
std::optional<Merge> split_merge(std::string_view text) {
  const size_t space = text.find(' ');
  if (space == 0 || space == std::string_view::npos || space + 1 == text.size() ||
      text.find(' ', space + 1) != std::string_view::npos)
    return std::nullopt;
  return Merge(text.substr(0, space), text.substr(space + 1));
}

// The vocabulary is not stored: as in simple_tokenizer.py it is the 512 byte tokens, one token per merge
// (its two symbols joined) in merge order, then <|startoftext|> and <|endoftext|>.
BpeTokenizer load_openai_vocab(const fs::path& path) {
  const std::string name = path.string();
  const std::string text = read_gzip_file(path);
  std::vector<std::string> tokens = clip_byte_tokens();
  std::vector<Merge> merges;
  int64_t line_no = 0;
  for (size_t pos = 0; pos < text.size() && merges.size() < kOpenAiMerges;) {
    const size_t eol = std::min(text.find('\n', pos), text.size());
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (line.ends_with('\r')) line.remove_suffix(1);
    // CLIP skips line 1 unread; it is "bpe_simple_vocab_16e6.txt#version: 0.2" in OpenAI's file.
    if (line_no == 1) {
      check(line.find("#version") != std::string_view::npos, name,
            ":1: expected a \"#version\" header, got \"", excerpt(line), "\" (not a CLIP merges file?)");
      continue;
    }
    std::optional<Merge> merge = split_merge(line);
    check(merge.has_value(), name, ":", line_no, ": expected two symbols separated by one space, got \"",
          excerpt(line), "\"");
    tokens.push_back(merge->first + merge->second);
    merges.push_back(std::move(*merge));
  }
  tokens.emplace_back(kStartOfText);
  tokens.emplace_back(kEndOfText);
  return BpeTokenizer::from_tokens(std::move(tokens), std::move(merges), name, name);
}

BpeTokenizer load_tokenizer_json(const fs::path& path) {
  const std::string name = path.string();
  const json doc = read_json_file(path);
  // doc[key] for the dotted field name `field`, checked to be of `type`.
  auto member = [&](const json& parent, const char* key, std::string_view field,
                    json::value_t type) -> const json& {
    auto it = parent.find(key);
    check(it != parent.end(), name, ": missing field ", field, " (not a Hugging Face tokenizer.json?)");
    check(it->type() == type, name, ": ", field, " must be ", json(type).type_name(), ", got ",
          it->type_name());
    return *it;
  };
  check(doc.is_object(), name, ": expected a JSON object, got ", doc.type_name());
  const json& model = member(doc, "model", "model", json::value_t::object);
  const json type = model.value("type", json());
  check(type == "BPE", name, ": model.type is ", excerpt(type.dump()),
        ": only BPE models can be read (CLIP's tokenizer is BPE)");
  // The BPE options that would change the tokens, as CLIP's file sets them; the others (unk_token, fuse_unk,
  // byte_fallback) never apply, since every byte has a token.
  const json suffix = model.value("end_of_word_suffix", json());
  const json prefix = model.value("continuing_subword_prefix", json());
  const json dropout = model.value("dropout", json());
  check(suffix == "</w>", name, ": model.end_of_word_suffix is ", excerpt(suffix.dump()),
        ", but CLIP's tokenizer ends each word with \"</w>\"");
  check(prefix.is_null() || prefix == "", name, ": model.continuing_subword_prefix is ",
        excerpt(prefix.dump()), ", but CLIP's tokenizer has none");
  check(dropout.is_null() || dropout == 0, name, ": model.dropout is ", excerpt(dropout.dump()),
        ", but CLIP's tokenizer has no BPE dropout");

  std::vector<std::string> tokens;
  auto add_token = [&](const std::string& token, const json& id_value, const std::string& field) {
    check(id_value.is_number_integer(), name, ": ", field, ": id must be an integer, got ",
          excerpt(id_value.dump()));
    const auto id = id_value.get<int64_t>();
    check(id >= 0 && id <= kMaxTokenId, name, ": ", field, ": id ", id, " is outside [0, ", kMaxTokenId, "]");
    check(!token.empty(), name, ": ", field, ": empty token");
    if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(id + 1);
    check(tokens[id].empty() || tokens[id] == token, name, ": ", field, ": id ", id, " is used by \"",
          tokens[id], "\" and \"", token, "\"");
    tokens[id] = token;
  };
  for (const auto& [token, id] : member(model, "vocab", "model.vocab", json::value_t::object).items())
    add_token(token, id, str_cat("model.vocab[", json(token).dump(), "]"));
  // CLIP's special tokens may be listed only here; other added tokens keep their ids (see the header).
  if (doc.contains("added_tokens")) {
    const json& added = member(doc, "added_tokens", "added_tokens", json::value_t::array);
    for (size_t i = 0; i < added.size(); ++i) {
      const std::string field = str_cat("added_tokens[", i, "]");
      const json& content = member(added[i], "content", field + ".content", json::value_t::string);
      add_token(content.get<std::string>(), added[i].value("id", json()), field + ".id");
    }
  }

  std::vector<Merge> merges;
  const json& merges_json = member(model, "merges", "model.merges", json::value_t::array);
  for (size_t i = 0; i < merges_json.size(); ++i) {
    // "a b" strings, or [a, b] pairs since tokenizers 0.20 (which allow spaces inside symbols).
    const json& m = merges_json[i];
    std::optional<Merge> merge;
    if (m.is_string()) {
      merge = split_merge(m.get_ref<const std::string&>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string() &&
               !m[0].get_ref<const std::string&>().empty() && !m[1].get_ref<const std::string&>().empty()) {
      merge = Merge(m[0].get<std::string>(), m[1].get<std::string>());
    }
    check(merge.has_value(), name, ": model.merges[", i, "]: expected \"a b\" or [\"a\", \"b\"], got ",
          excerpt(m.dump()));
    merges.push_back(std::move(*merge));
  }
  return BpeTokenizer::from_tokens(std::move(tokens), std::move(merges), name + " model.vocab",
                                   name + " model.merges");
}

}  // namespace

BpeTokenizer load_clip_tokenizer(const fs::path& path) {
  const std::string name = path.string();
  if (fs::is_directory(path)) {
    if (fs::exists(path / "vocab.json") && fs::exists(path / "merges.txt")) return BpeTokenizer::load(path);
    if (fs::exists(path / "tokenizer.json")) return load_tokenizer_json(path / "tokenizer.json");
    if (fs::exists(path / kOpenAiVocab)) return load_openai_vocab(path / kOpenAiVocab);
    std::vector<std::string> gz;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(path, error))
      if (entry.path().filename().string().ends_with(".txt.gz"))
        gz.push_back(entry.path().filename().string());
    check(!error, "cannot list ", name, ": ", error.message());
    check(!gz.empty(), name,
          " holds no tokenizer files: looked for vocab.json + merges.txt, tokenizer.json, ", kOpenAiVocab,
          " and *.txt.gz");
    if (gz.size() > 1) {
      std::sort(gz.begin(), gz.end());
      std::string names = gz[0];
      for (size_t i = 1; i < gz.size(); ++i) names += ", " + gz[i];
      throw Error(
          str_cat(name, " holds several *.txt.gz files (", names, "): name the vocabulary file itself"));
    }
    return load_openai_vocab(path / gz[0]);
  }
  check(fs::exists(path), name, " does not exist (expected a tokenizer directory or file)");
  const std::string file = path.filename().string();
  if (file.ends_with(".gz")) return load_openai_vocab(path);
  if (file == "vocab.json" || file == "merges.txt") {
    const fs::path other = path.parent_path() / (file == "vocab.json" ? "merges.txt" : "vocab.json");
    check(fs::exists(other), name, " is read with the ", other.filename().string(), " beside it, but ",
          other.string(), " does not exist");
    return BpeTokenizer::load(path.parent_path());
  }
  check(path.extension() == ".json", name,
        ": not a tokenizer file (expected *.txt.gz, tokenizer.json, vocab.json or merges.txt)");
  return load_tokenizer_json(path);
}

}  // namespace mmlearn::text
