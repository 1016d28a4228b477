#include "mmlearn/text/whisper_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/text/bpe.h"
#include "mmlearn/text/unicode.h"

namespace mmlearn::text {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kTimestamps = 1501;  // 0.00 .. 30.00 s in 20 ms steps
constexpr uintmax_t kMaxFileBytes = 64u << 20;

std::string read_bounded(const fs::path& path) {
  check(fs::is_regular_file(path), path.string(), ": file not found");
  check(fs::file_size(path) <= kMaxFileBytes, path.string(), ": larger than ", kMaxFileBytes >> 20,
        " MiB, not a tokenizer file");
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text == "=") return std::string();  // tiktoken writes an empty token so
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t bits = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++pad;
        bits <<= 6;
        continue;
      }
      const int v = value(c);
      if (v < 0 || pad) return std::nullopt;
      bits = (bits << 6) | static_cast<uint32_t>(v);
    }
    out += static_cast<char>(bits >> 16);
    if (pad < 2) out += static_cast<char>((bits >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(bits & 0xff);
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t bits = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) bits |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) bits |= static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(bits >> 18) & 63];
    out += alphabet[(bits >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(bits >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? alphabet[bits & 63] : '=';
  }
  return out;
}

bool is_contraction_at(const std::u32string& s, size_t i, size_t& length) {
  if (s[i] != U'\'' || i + 1 >= s.size()) return false;
  const char32_t a = s[i + 1], b = i + 2 < s.size() ? s[i + 2] : 0;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
    length = 3;
    return true;
  }
  if (a == 's' || a == 't' || a == 'm' || a == 'd') {
    length = 2;
    return true;
  }
  return false;
}

bool is_other(char32_t c) { return !is_space(c) && !is_letter(c) && !is_number(c); }

}  // namespace

std::vector<std::string> gpt2_pre_tokenize(std::string_view text) {
  const std::u32string s = decode_utf8(text);
  std::vector<std::string> pieces;
  size_t i = 0;
  auto emit = [&](size_t end) {
    pieces.push_back(encode_utf8(std::u32string_view(s).substr(i, end - i)));
    i = end;
  };
  while (i < s.size()) {
    size_t length = 0;
    if (is_contraction_at(s, i, length)) {
      emit(i + length);
      continue;
    }
    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional ASCII space, then a run of one class.
    const size_t start = s[i] == U' ' && i + 1 < s.size() ? i + 1 : i;
    bool (*classes[])(char32_t) = {is_letter, is_number, is_other};
    bool matched = false;
    for (auto in_class : classes) {
      if (!in_class(s[start])) continue;
      size_t end = start;
      while (end < s.size() && in_class(s[end])) ++end;
      emit(end);
      matched = true;
      break;
    }
    if (matched) continue;
    // "\s+(?!\S)|\s+": a whitespace run, leaving its last character to the next piece when a non-space
    // follows (so that " word" keeps its space) unless the run is a single character.
    size_t end = i;
    while (end < s.size() && is_space(s[end])) ++end;
    if (end < s.size() && end - i > 1) --end;
    emit(end);
  }
  return pieces;
}

std::vector<std::string> train_byte_ranks(const std::vector<std::string>& texts, int64_t vocab_size) {
  check(vocab_size >= 256 && vocab_size <= 1'000'000, "vocabulary size ", vocab_size,
        " is outside 256..1000000");
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  // Distinct pieces with their counts, each as a sequence of token ids.
  std::map<std::string, int64_t> counts;
  for (const auto& text : texts)
    for (auto& piece : gpt2_pre_tokenize(text)) ++counts[piece];
  std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
  for (const auto& [piece, count] : counts) {
    std::vector<int32_t> ids;
    for (unsigned char c : piece) ids.push_back(c);
    words.emplace_back(std::move(ids), count);
  }
  while (static_cast<int64_t>(tokens.size()) < vocab_size) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
    for (const auto& [ids, count] : words)
      for (size_t i = 0; i + 1 < ids.size(); ++i) pairs[{ids[i], ids[i + 1]}] += count;
    const std::pair<int32_t, int32_t>* best = nullptr;
    int64_t best_count = 1;  // a pair seen once is not worth a token
    for (const auto& [pair, count] : pairs) {
      const bool better =
          count > best_count || (count == best_count && best &&
                                 std::tie(tokens[size_t(pair.first)], tokens[size_t(pair.second)]) <
                                     std::tie(tokens[size_t(best->first)], tokens[size_t(best->second)]));
      if (better) best = &pair, best_count = count;
    }
    if (!best) break;
    const auto [left, right] = *best;
    const auto merged = static_cast<int32_t>(tokens.size());
    tokens.push_back(tokens[size_t(left)] + tokens[size_t(right)]);
    for (auto& [ids, count] : words) {
      std::vector<int32_t> next;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i + 1 < ids.size() && ids[i] == left && ids[i + 1] == right) {
          next.push_back(merged);
          ++i;
        } else {
          next.push_back(ids[i]);
        }
      }
      ids = std::move(next);
    }
  }
  return tokens;
}

const std::vector<std::string>& whisper_language_codes() {
  static const std::vector<std::string> codes = {
      "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt",  "tr", "pl", "ca", "nl", "ar", "sv", "it", "id",
      "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro",  "da", "hu", "ta", "no", "th", "ur", "hr", "bg",
      "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv",  "bn", "sr", "az", "sl", "kn", "et", "mk", "br",
      "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",  "gl", "mr", "pa", "si", "km", "sn", "yo", "so",
      "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi",  "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt",
      "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue"};
  return codes;
}

WhisperTokenizer WhisperTokenizer::from_ranks(std::vector<std::string> token_bytes, int num_languages,
                                              const std::string& where) {
  const int max_languages = static_cast<int>(whisper_language_codes().size());
  check(num_languages >= 0 && num_languages <= max_languages, where, ": ", num_languages,
        " languages; Whisper's tokenizer knows ", max_languages);
  check(!token_bytes.empty(), where, ": empty vocabulary");
  WhisperTokenizer t;
  t.bytes_of_id_ = std::move(token_bytes);
  for (size_t id = 0; id < t.bytes_of_id_.size(); ++id) {
    const auto& bytes = t.bytes_of_id_[id];
    if (bytes.empty()) continue;  // multilingual.tiktoken has one empty token; it never comes out of encoding
    check(t.id_of_bytes_.emplace(bytes, static_cast<int64_t>(id)).second, where, ": token id ", id,
          " repeats the bytes of an earlier token");
  }
  for (int b = 0; b < 256; ++b)
    check(t.id_of_bytes_.count(std::string(1, static_cast<char>(b))), where, ": byte ", b,
          " has no token, so some text could not be encoded");
  int64_t next = t.base_size();
  auto add = [&](const std::string& name) {
    t.special_ids_[name] = next;
    return next++;
  };
  t.eot = add("<|endoftext|>");
  t.sot = add("<|startoftranscript|>");
  t.languages_.assign(whisper_language_codes().begin(), whisper_language_codes().begin() + num_languages);
  for (const auto& code : t.languages_) add("<|" + code + "|>");
  t.translate = add("<|translate|>");
  t.transcribe = add("<|transcribe|>");
  t.sot_lm = add("<|startoflm|>");
  t.sot_prev = add("<|startofprev|>");
  t.no_speech = add("<|nospeech|>");
  t.no_timestamps = add("<|notimestamps|>");
  t.timestamp_begin = next;
  return t;
}

WhisperTokenizer WhisperTokenizer::from_tiktoken(const fs::path& file, int num_languages) {
  const std::string text = read_bounded(file);
  std::vector<std::string> tokens;
  std::vector<bool> seen;
  size_t line_number = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (line.empty()) continue;
    const auto where = str_cat(file.string(), ":", line_number);
    const size_t space = line.find(' ');
    check(space != std::string_view::npos, where, ": expected \"<base64 token> <rank>\"");
    auto bytes = base64_decode(line.substr(0, space));
    check(bytes.has_value(), where, ": the token is not valid base64");
    int64_t rank = -1;
    const auto digits = line.substr(space + 1);
    check(!digits.empty() && digits.size() <= 8 && std::all_of(digits.begin(), digits.end(), ::isdigit),
          where, ": the rank is not a number below 10^8");
    rank = std::stoll(std::string(digits));
    check(rank < 4'000'000, where, ": rank ", rank, " is implausibly large");
    if (static_cast<size_t>(rank) >= tokens.size()) {
      tokens.resize(static_cast<size_t>(rank) + 1);
      seen.resize(static_cast<size_t>(rank) + 1);
    }
    check(!seen[static_cast<size_t>(rank)], where, ": rank ", rank, " appears twice");
    seen[static_cast<size_t>(rank)] = true;
    tokens[static_cast<size_t>(rank)] = std::move(*bytes);
  }
  for (size_t rank = 0; rank < seen.size(); ++rank)
    check(seen[rank], file.string(), ": rank ", rank, " is missing (ranks must be 0..n-1 without gaps)");
  return from_ranks(std::move(tokens), num_languages, file.string());
}

WhisperTokenizer WhisperTokenizer::from_hf_dir(const fs::path& dir) {
  const auto vocab_path = dir / "vocab.json";
  const json vocab = read_json_file(vocab_path);
  check(vocab.is_object(), vocab_path.string(), ": expected an object of token -> id");
  std::vector<std::string> tokens;
  std::map<std::string, int64_t> named;  // special tokens found in any of the files
  auto note_special = [&](const std::string& name, int64_t id, const std::string& where) {
    check(id >= 0 && id < 4'000'000, where, ": id ", id, " of ", name, " is out of range");
    named[name] = id;
  };
  for (const auto& [token, id_json] : vocab.items()) {
    check(id_json.is_number_integer(), vocab_path.string(), ": the id of \"", token, "\" is not an integer");
    const int64_t id = id_json.get<int64_t>();
    if (token.size() > 4 && token.rfind("<|", 0) == 0 && token.substr(token.size() - 2) == "|>") {
      note_special(token, id, vocab_path.string());
      continue;
    }
    auto bytes = gpt2_bytes_of_symbols(token);
    check(bytes.has_value(), vocab_path.string(), ": \"", token, "\" is not a byte-level BPE token");
    check(id >= 0 && id < 4'000'000, vocab_path.string(), ": id ", id, " is out of range");
    if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(static_cast<size_t>(id) + 1);
    tokens[static_cast<size_t>(id)] = std::move(*bytes);
  }
  // Special tokens live in one of three files, depending on the transformers version that wrote them.
  if (auto p = dir / "added_tokens.json"; fs::exists(p)) {
    const json added = read_json_file(p);
    for (const auto& [name, id] : added.items())
      if (id.is_number_integer()) note_special(name, id.get<int64_t>(), p.string());
  }
  if (auto p = dir / "tokenizer.json"; fs::exists(p)) {
    const auto j = read_json_file(p);
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
      for (const auto& t : j["added_tokens"])
        if (t.contains("content") && t["content"].is_string() && t.contains("id") &&
            t["id"].is_number_integer())
          note_special(t["content"].get<std::string>(), t["id"].get<int64_t>(), p.string());
  }
  if (auto p = dir / "tokenizer_config.json"; fs::exists(p)) {
    const auto j = read_json_file(p);
    if (j.contains("added_tokens_decoder") && j["added_tokens_decoder"].is_object())
      for (const auto& [id, t] : j["added_tokens_decoder"].items())
        if (t.contains("content") && t["content"].is_string())
          note_special(t["content"].get<std::string>(), std::stoll(id), p.string());
  }
  const auto where = dir.string();
  auto id_of = [&](const std::string& name) {
    auto it = named.find(name);
    check(it != named.end(), where, ": no ", name,
          " token in vocab.json, added_tokens.json, tokenizer.json or ",
          "tokenizer_config.json; is this a Whisper tokenizer?");
    return it->second;
  };
  const int64_t eot = id_of("<|endoftext|>");
  check(eot == static_cast<int64_t>(tokens.size()), where, ": <|endoftext|> has id ", eot,
        " but the byte-level ", "vocabulary has ", tokens.size(),
        " tokens; Whisper puts it right after them");
  const int64_t languages = id_of("<|translate|>") - id_of("<|startoftranscript|>") - 1;
  auto t = from_ranks(std::move(tokens), static_cast<int>(languages), where);
  for (const auto& [name, id] : named) {
    auto ours = t.special(name);
    if (ours)
      check(*ours == id, where, ": ", name, " has id ", id, " where Whisper's layout puts it at ", *ours);
  }
  return t;
}

WhisperTokenizer WhisperTokenizer::load(const fs::path& path, int64_t n_vocab) {
  // OpenAI's rule (whisper/__init__.py): multilingual models have n_vocab >= 51865, and the vocabulary ends
  // with the language tokens, 6 task tokens and 1501 timestamps after the base tokens.
  const bool multilingual = n_vocab >= 51865;
  const int languages = static_cast<int>(n_vocab - 51765 - (multilingual ? 1 : 0));
  if (fs::is_regular_file(path)) return from_tiktoken(path, languages);
  check(fs::is_directory(path), path.string(),
        ": no tokenizer here (expected a directory or a .tiktoken file)");
  if (fs::exists(path / "vocab.json")) return from_hf_dir(path);
  for (const char* name : {multilingual ? "multilingual.tiktoken" : "gpt2.tiktoken", "tokenizer.tiktoken"})
    if (fs::exists(path / name)) return from_tiktoken(path / name, languages);
  throw Error(str_cat(path.string(), ": no Whisper tokenizer (vocab.json, or ",
                      multilingual ? "multilingual" : "gpt2", ".tiktoken); copy one next to the model"));
}

void WhisperTokenizer::save_tiktoken(const fs::path& file) const {
  std::string text;
  for (size_t id = 0; id < bytes_of_id_.size(); ++id)
    text += base64_encode(bytes_of_id_[id]) + " " + std::to_string(id) + "\n";
  write_file_atomic(file, text);
}

std::vector<int64_t> WhisperTokenizer::encode_piece(const std::string& piece) const {
  if (auto it = id_of_bytes_.find(piece); it != id_of_bytes_.end()) return {it->second};
  // Start from bytes; repeatedly merge the adjacent pair whose concatenation has the lowest rank.
  std::vector<std::string> parts;
  for (char c : piece) parts.emplace_back(1, c);
  while (parts.size() > 1) {
    int64_t best_rank = -1;
    size_t best = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = id_of_bytes_.find(parts[i] + parts[i + 1]);
      if (it != id_of_bytes_.end() && (best_rank < 0 || it->second < best_rank)) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank < 0) break;
    parts[best] += parts[best + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  std::vector<int64_t> ids;
  for (const auto& p : parts) ids.push_back(id_of_bytes_.at(p));
  return ids;
}

std::vector<int64_t> WhisperTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const auto& piece : gpt2_pre_tokenize(text)) {
    auto piece_ids = encode_piece(piece);
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }
  return ids;
}

std::string WhisperTokenizer::token_text(int64_t id) const {
  if (id >= 0 && id < base_size()) return bytes_of_id_[static_cast<size_t>(id)];
  if (id >= timestamp_begin && id < vocab_size()) {
    char text[32];
    std::snprintf(text, sizeof text, "<|%.2f|>", static_cast<double>(id - timestamp_begin) * 0.02);
    return text;
  }
  for (const auto& [name, special_id] : special_ids_)
    if (special_id == id) return name;
  throw Error(str_cat("token id ", id, " is outside Whisper's vocabulary of ", vocab_size()));
}

std::string WhisperTokenizer::decode(const std::vector<int64_t>& ids, bool specials) const {
  std::string bytes;
  for (int64_t id : ids) {
    if (id >= 0 && id < base_size())
      bytes += bytes_of_id_[static_cast<size_t>(id)];
    else if (specials && id >= eot && id < timestamp_begin)
      bytes += token_text(id);
  }
  return encode_utf8(decode_utf8(bytes));  // ill-formed UTF-8 (a character cut between tokens) -> U+FFFD
}

std::string WhisperTokenizer::decode_with_timestamps(const std::vector<int64_t>& ids) const {
  std::string out, bytes;
  auto flush = [&] {
    out += encode_utf8(decode_utf8(bytes));
    bytes.clear();
  };
  for (int64_t id : ids) {
    if (id >= 0 && id < base_size()) {
      bytes += bytes_of_id_[static_cast<size_t>(id)];
    } else {
      flush();
      out += token_text(id);
    }
  }
  flush();
  return out;
}

std::optional<int64_t> WhisperTokenizer::special(std::string_view name) const {
  if (auto it = special_ids_.find(name); it != special_ids_.end()) return it->second;
  return std::nullopt;
}

int64_t WhisperTokenizer::language_token(std::string_view code) const {
  if (auto id = special(str_cat("<|", code, "|>")); id && *id > sot && *id < translate) return *id;
  std::string known;
  for (const auto& c : languages_) known += (known.empty() ? "" : " ") + c;
  throw UsageError(str_cat("unknown language \"", code, "\" (this model knows: ", known, ")"));
}

std::optional<std::string> WhisperTokenizer::language_of(int64_t token) const {
  if (token > sot && token < translate) return languages_[static_cast<size_t>(token - sot - 1)];
  return std::nullopt;
}

std::vector<int64_t> WhisperTokenizer::sot_sequence(const std::string& language,
                                                    const std::string& task) const {
  std::vector<int64_t> ids = {sot};
  if (!language.empty()) ids.push_back(language_token(language));
  if (!task.empty()) {
    check(task == "transcribe" || task == "translate", "unknown task \"", task,
          "\" (expected transcribe or translate)");
    ids.push_back(task == "transcribe" ? transcribe : translate);
  }
  return ids;
}

std::vector<int64_t> WhisperTokenizer::non_speech_tokens() const {
  // Whisper's list (tokenizer.py): single symbols and bracket/quote runs that mark non-speech, with and
  // without a leading space where they are one token, and musical signs always.
  std::vector<std::string> symbols;
  for (const char* s : {"\"", "#", "(", ")", "*", "+", "/", ":", ";", "<",  "=",  ">",  "@", "[",
                        "\\", "]", "^", "_", "`", "{", "|", "}", "~", "「", "」", "『", "』"})
    symbols.emplace_back(s);
  for (const char* s : {"<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"",
                        "((", "))", "(((", ")))", "[[", "]]",  "{{", "}}", "♪♪", "♪♪♪"})
    symbols.emplace_back(s);
  const std::vector<std::string> music = {"♩", "♪", "♫", "♬", "♭", "♮", "♯"};
  std::set<int64_t> result = {encode(" -").at(0), encode(" '").at(0)};
  for (const auto& symbol : symbols)
    for (const auto& ids : {encode(symbol), encode(" " + symbol)})
      if (ids.size() == 1) result.insert(ids[0]);
  for (const auto& symbol : music)
    for (const auto& ids : {encode(symbol), encode(" " + symbol)}) result.insert(ids.at(0));
  return {result.begin(), result.end()};
}

}  // namespace mmlearn::text
