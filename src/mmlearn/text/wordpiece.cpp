#include "mmlearn/text/wordpiece.h"

#include <algorithm>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/text/clean_up.h"
#include "mmlearn/text/unicode.h"

namespace mmlearn::text {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kMaxVocabBytes = int64_t{64} << 20;
constexpr int64_t kMaxTokens = 10'000'000;
const char* const kStandardSpecials[] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};

bool is_bert_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || is_space_separator(c);
}
bool is_bert_control(char32_t c) { return c != '\t' && c != '\n' && c != '\r' && is_other_category(c); }
bool is_bert_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
    return true;  // ASCII symbols such as $ and ^ count, as in BERT
  return is_punctuation_category(c);
}
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Python's str.split(): runs of whitespace separate words.
std::vector<std::u32string> split_whitespace(const std::u32string& text) {
  std::vector<std::u32string> words;
  std::u32string word;
  for (char32_t c : text) {
    if (is_space(c) || (c >= 0x1C && c <= 0x1F)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::string read_vocab_file(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  check(!ec, path.string(), ": cannot read (", ec.message(), ")");
  check(static_cast<int64_t>(size) <= kMaxVocabBytes, path.string(), ": ", size,
        " bytes; a vocabulary file is at most 64 MiB");
  return read_file(path);
}

json read_json_bounded(const fs::path& path) {
  const std::string bytes = read_vocab_file(path);
  try {
    return json::parse(bytes);
  } catch (const json::exception& e) {
    throw Error(str_cat(path.string(), ": not valid JSON (", e.what(), ")"));
  }
}

// The tokenizer_config.json / normalizer settings: Hugging Face's strip_accents = null follows lower_case.
WordPieceOptions options_from(const json& j, const char* lower_key, const std::string& where) {
  WordPieceOptions o;
  if (!j.is_object()) return o;
  read_field(j, lower_key, o.lower_case, where);
  o.strip_accents = o.lower_case;
  if (j.contains("strip_accents") && !j["strip_accents"].is_null())
    read_field(j, "strip_accents", o.strip_accents, where);
  read_field(j, lower_key == std::string("lowercase") ? "handle_chinese_chars" : "tokenize_chinese_chars",
             o.split_chinese, where);
  return o;
}

WordPieceTokenizer load_vocab_txt(const fs::path& vocab) {
  const std::string bytes = read_vocab_file(vocab);
  std::vector<std::string> tokens;
  for (size_t start = 0; start < bytes.size();) {
    const size_t end = std::min(bytes.find('\n', start), bytes.size());
    tokens.push_back(bytes.substr(start, end - start));  // as load_vocab's rstrip("\n"): a "\r" stays
    start = end + 1;
    check(static_cast<int64_t>(tokens.size()) <= kMaxTokens, vocab.string(), ": more than ", kMaxTokens,
          " tokens");
  }
  check(!tokens.empty(), vocab.string(), ": empty vocabulary");
  const fs::path dir = vocab.parent_path();
  WordPieceOptions options;
  if (fs::exists(dir / "tokenizer_config.json")) {
    const fs::path config = dir / "tokenizer_config.json";
    const json j = read_json_bounded(config);
    options = options_from(j, "do_lower_case", config.string());
    if (j.is_object()) read_field(j, "unk_token", options.unk, config.string());
  }
  std::vector<std::string> specials;
  if (fs::exists(dir / "added_tokens.json")) {  // {"[DEC]": 30522, "[ENC]": 30523}
    const fs::path added = dir / "added_tokens.json";
    const json j = read_json_bounded(added);
    check(j.is_object(), added.string(), ": expected an object of token: id");
    for (const auto& [token, id] : j.items()) {
      check(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < kMaxTokens,
            added.string(), ": token \"", token, "\" has id ", id.dump());
      const auto i = static_cast<size_t>(id.get<int64_t>());
      if (i >= tokens.size()) tokens.resize(i + 1);
      tokens[i] = token;
      specials.push_back(token);
    }
  }
  if (fs::exists(dir / "special_tokens_map.json")) {  // BLIP's bos_token [DEC], additional [ENC]
    const json j = read_json_bounded(dir / "special_tokens_map.json");
    if (j.is_object())
      for (const auto& [key, value] : j.items()) {
        const auto add = [&](const json& v) {
          if (v.is_string()) specials.push_back(v.get<std::string>());
          if (v.is_object() && v.contains("content") && v["content"].is_string())
            specials.push_back(v["content"].get<std::string>());
        };
        if (value.is_array())
          for (const auto& v : value) add(v);
        else
          add(value);
      }
  }
  return WordPieceTokenizer::from_tokens(std::move(tokens), options, std::move(specials));
}

WordPieceTokenizer load_wordpiece_json(const fs::path& path) {
  const json j = read_json_bounded(path);
  const std::string where = path.string();
  check(j.is_object() && j.contains("model") && j["model"].is_object(), where, ": no \"model\" object");
  const json& model = j["model"];
  check(string_value(model, "type") == "WordPiece", where, ": model type \"", string_value(model, "type"),
        "\" is not WordPiece (a BERT tokenizer)");
  check(model.contains("vocab") && model["vocab"].is_object(), where, ": model.vocab must be an object");
  std::vector<std::string> tokens;
  std::vector<bool> seen;
  auto put = [&](const std::string& token, const json& id) {
    check(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < kMaxTokens, where,
          ": token \"", token, "\" has id ", id.dump());
    const auto i = static_cast<size_t>(id.get<int64_t>());
    if (i >= tokens.size()) tokens.resize(i + 1), seen.resize(i + 1);
    tokens[i] = token;
    seen[i] = true;
  };
  for (const auto& [token, id] : model["vocab"].items()) put(token, id);
  std::vector<std::string> specials;
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& t : j["added_tokens"]) {
      check(t.is_object() && t.contains("content") && t["content"].is_string() && t.contains("id"), where,
            ": added_tokens entries need \"id\" and \"content\"");
      put(t["content"].get<std::string>(), t["id"]);
      specials.push_back(t["content"].get<std::string>());
    }
  for (size_t i = 0; i < seen.size(); ++i)
    check(seen[i], where, ": no token has id ", i, " (ids must be dense)");
  WordPieceOptions options = options_from(j.value("normalizer", json()), "lowercase", where);
  read_field(model, "unk_token", options.unk, where + ": model");
  read_field(model, "continuing_subword_prefix", options.prefix, where + ": model");
  read_field(model, "max_input_chars_per_word", options.max_word_chars, where + ": model");
  return WordPieceTokenizer::from_tokens(std::move(tokens), options, std::move(specials));
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::load(const fs::path& path) {
  if (fs::is_directory(path)) {
    if (fs::exists(path / "vocab.txt")) return load_vocab_txt(path / "vocab.txt");
    if (fs::exists(path / "tokenizer.json")) return load_wordpiece_json(path / "tokenizer.json");
    throw Error(str_cat(path.string(), ": no vocab.txt or tokenizer.json (a BERT WordPiece vocabulary)"));
  }
  check(fs::exists(path), path.string(), ": no such file");
  return path.extension() == ".json" ? load_wordpiece_json(path) : load_vocab_txt(path);
}

WordPieceTokenizer WordPieceTokenizer::from_tokens(std::vector<std::string> id_to_token,
                                                   WordPieceOptions options,
                                                   std::vector<std::string> specials) {
  WordPieceTokenizer t;
  t.options_ = std::move(options);
  t.id_to_token_ = std::move(id_to_token);
  for (size_t i = 0; i < t.id_to_token_.size(); ++i)
    t.token_to_id_[t.id_to_token_[i]] = static_cast<int64_t>(i);  // a repeated token: its last line wins
  for (const char* s : kStandardSpecials)
    if (t.find(s) >= 0) specials.emplace_back(s);
  std::sort(specials.begin(), specials.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  specials.erase(std::unique(specials.begin(), specials.end()), specials.end());
  specials.erase(std::remove_if(specials.begin(), specials.end(),
                                [&](const std::string& s) { return s.empty() || t.find(s) < 0; }),
                 specials.end());
  t.specials_ = std::move(specials);
  return t;
}

int64_t WordPieceTokenizer::find(const std::string& token) const {
  const auto it = token_to_id_.find(token);
  return it == token_to_id_.end() ? -1 : it->second;
}

int64_t WordPieceTokenizer::id(const std::string& token) const {
  const int64_t i = find(token);
  check(i >= 0, "the WordPiece vocabulary has no ", token, " token");
  return i;
}

std::vector<std::string> WordPieceTokenizer::basic_tokens(const std::string& text) const {
  std::u32string clean;
  for (char32_t c : decode_utf8(text)) {
    if (c == 0 || c == kReplacementChar || is_bert_control(c)) continue;
    if (is_bert_whitespace(c)) {
      clean.push_back(' ');
    } else if (options_.split_chinese && is_cjk(c)) {
      clean.push_back(' ');
      clean.push_back(c);
      clean.push_back(' ');
    } else {
      clean.push_back(c);
    }
  }
  std::vector<std::string> out;
  for (std::u32string word : split_whitespace(clean)) {
    if (options_.lower_case) word = lower(word);
    if (options_.strip_accents) word = strip_accents(word);
    std::u32string piece;
    for (char32_t c : word) {
      if (!is_bert_punctuation(c)) {
        piece.push_back(c);
        continue;
      }
      if (!piece.empty()) out.push_back(encode_utf8(piece));
      piece.clear();
      out.push_back(encode_utf8(std::u32string(1, c)));
    }
    if (!piece.empty()) out.push_back(encode_utf8(piece));
  }
  // Accent stripping can leave nothing of a word, or a space: split again, as BERT does.
  std::vector<std::string> words;
  for (const auto& w : out)
    for (const auto& part : split_whitespace(decode_utf8(w))) words.push_back(encode_utf8(part));
  return words;
}

void WordPieceTokenizer::word_pieces(const std::string& word, std::vector<int64_t>& out) const {
  const std::u32string chars = decode_utf8(word);
  const auto unknown = [&] {
    const int64_t unk = find(options_.unk);
    check(unk >= 0, "cannot tokenize \"", word, "\": the WordPiece vocabulary has no unknown token ",
          options_.unk);
    out.push_back(unk);
  };
  if (static_cast<int64_t>(chars.size()) > options_.max_word_chars) return unknown();
  std::vector<int64_t> pieces;
  for (size_t start = 0; start < chars.size();) {
    int64_t found = -1;
    size_t end = chars.size();
    for (; end > start; --end) {
      const std::string piece =
          (start > 0 ? options_.prefix : std::string()) + encode_utf8(chars.substr(start, end - start));
      if ((found = find(piece)) >= 0) break;
    }
    if (found < 0) return unknown();
    pieces.push_back(found);
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

std::vector<int64_t> WordPieceTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (size_t start = 0; start < text.size();) {
    // The nearest special token written in the text (the longest where two start together).
    size_t at = std::string::npos;
    const std::string* special = nullptr;
    for (const auto& s : specials_) {
      const size_t p = text.find(s, start);
      if (p < at) at = p, special = &s;
    }
    for (const auto& word :
         basic_tokens(text.substr(start, at == std::string::npos ? std::string::npos : at - start)))
      word_pieces(word, ids);
    if (!special) break;
    ids.push_back(find(*special));
    start = at + special->size();
  }
  return ids;
}

std::vector<int64_t> WordPieceTokenizer::encode_with_specials(const std::string& text) const {
  std::vector<int64_t> ids = {id("[CLS]")};
  const auto words = encode(text);
  ids.insert(ids.end(), words.begin(), words.end());
  ids.push_back(id("[SEP]"));
  return ids;
}

std::string WordPieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (int64_t i : ids) {
    check(i >= 0 && i < vocab_size(), "token id ", i, " is outside the vocabulary (", vocab_size(), ")");
    const std::string& t = token(i);
    if (std::find(specials_.begin(), specials_.end(), t) != specials_.end()) continue;
    if (t.rfind(options_.prefix, 0) == 0 && !text.empty())
      text += t.substr(options_.prefix.size());
    else
      text += (text.empty() ? "" : " ") + t;
  }
  return clean_up_tokenization(std::move(text));
}

}  // namespace mmlearn::text
