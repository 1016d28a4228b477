#include "mmlearn/text/bpe.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <shared_mutex>
#include <unordered_set>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/text/unicode.h"

namespace mmlearn::text {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kEndOfWord = "</w>";

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 and
// up, in byte order. The order of byte_order() is also the order of the first 256 ids in CLIP's vocabulary.
// https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py#L16
struct ByteTable {
  std::array<char32_t, 256> symbol_of_byte{};
  std::array<uint8_t, 256> byte_order{};
  std::array<int16_t, 512> byte_of_symbol{};  // -1: not a byte symbol

  ByteTable() {
    byte_of_symbol.fill(-1);
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
    int n = 0, next_extra = 0;
    for (int b = 0; b < 256; ++b)
      if (printable(b)) byte_order[n++] = static_cast<uint8_t>(b);
    for (int b = 0; b < 256; ++b) {
      if (printable(b)) {
        symbol_of_byte[b] = static_cast<char32_t>(b);
      } else {
        symbol_of_byte[b] = static_cast<char32_t>(256 + next_extra++);
        byte_order[n++] = static_cast<uint8_t>(b);
      }
      byte_of_symbol[symbol_of_byte[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable table;
  return table;
}

std::string byte_symbol(uint8_t b, bool end_of_word) {
  std::string s;
  append_utf8(s, byte_table().symbol_of_byte[b]);
  if (end_of_word) s += kEndOfWord;
  return s;
}

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b);
}

// Python's str.isspace(), which str.strip() uses: \s plus the four separators U+001C..U+001F.
bool is_python_strip_space(char32_t cp) { return is_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

// Whether the lower-cased text continues at s[i] with the ASCII literal, as a pattern compiled with
// IGNORECASE sees it: after lower() the only extra match left is U+017F LATIN SMALL LETTER LONG S, which
// case-folds to "s" (so "'\u017f" is a contraction, as in CLIP).
bool matches_at(const std::u32string& s, size_t i, std::string_view ascii) {
  if (i > s.size() || s.size() - i < ascii.size()) return false;
  for (size_t k = 0; k < ascii.size(); ++k) {
    char32_t c = s[i + k];
    if (c != static_cast<char32_t>(ascii[k]) && !(ascii[k] == 's' && c == 0x17F)) return false;
  }
  return true;
}

// Length of the contraction ('s 't 're 've 'm 'll 'd) starting at the apostrophe s[i], or 0.
size_t contraction_length(const std::u32string& s, size_t i) {
  static constexpr std::string_view kSuffixes[] = {"s", "t", "re", "ve", "m", "ll", "d"};
  for (std::string_view suffix : kSuffixes)
    if (matches_at(s, i + 1, suffix)) return 1 + suffix.size();
  return 0;
}

std::string describe(const nlohmann::json& value) {
  std::string text = value.dump();
  return text.size() > 40 ? text.substr(0, 40) + "..." : text;
}

}  // namespace

std::vector<std::string> clip_byte_tokens() {
  std::vector<std::string> tokens;
  for (bool end : {false, true})
    for (uint8_t b : byte_table().byte_order) tokens.push_back(byte_symbol(b, end));
  return tokens;
}

std::vector<std::string> clip_pre_tokenize(std::string_view text) {
  // whitespace_clean: re.sub(r"\s+", " ", text).strip(), then .lower() on the whole text.
  std::u32string raw = decode_utf8(text);
  std::u32string cleaned;
  cleaned.reserve(raw.size());
  for (char32_t cp : raw) {
    if (is_space(cp)) {
      if (cleaned.empty() || cleaned.back() != U' ') cleaned.push_back(U' ');
    } else {
      cleaned.push_back(cp);
    }
  }
  size_t begin = 0, end = cleaned.size();
  while (begin < end && is_python_strip_space(cleaned[begin])) ++begin;
  while (end > begin && is_python_strip_space(cleaned[end - 1])) --end;
  std::u32string s = lower(std::u32string_view(cleaned).substr(begin, end - begin));

  // The pattern's alternatives are tried in order at each position (first match wins, not the longest);
  // codepoints that start no alternative (only \s) are skipped, as re.findall does.
  std::vector<std::string> words;
  size_t i = 0;
  auto emit = [&](size_t length) {
    words.push_back(encode_utf8(std::u32string_view(s).substr(i, length)));
    i += length;
  };
  while (i < s.size()) {
    char32_t c = s[i];
    if (is_space(c)) {
      ++i;
    } else if (c == U'<' && matches_at(s, i, kStartOfText)) {
      emit(kStartOfText.size());
    } else if (c == U'<' && matches_at(s, i, kEndOfText)) {
      emit(kEndOfText.size());
    } else if (size_t n = c == U'\'' ? contraction_length(s, i) : 0; n > 0) {
      emit(n);
    } else if (is_letter(c)) {
      size_t j = i + 1;
      while (j < s.size() && is_letter(s[j])) ++j;
      emit(j - i);
    } else if (is_number(c)) {
      emit(1);
    } else {
      size_t j = i + 1;
      while (j < s.size() && !is_space(s[j]) && !is_letter(s[j]) && !is_number(s[j])) ++j;
      emit(j - i);
    }
  }
  return words;
}

// Memo of word -> symbol ids, as CLIP's self.cache. Bounded: cleared when full, since encoding arbitrary
// text (e.g. a web crawl) would otherwise grow it without limit.
struct BpeTokenizer::WordCache {
  static constexpr size_t kMaxEntries = size_t{1} << 18;
  std::shared_mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>> words;
};

BpeTokenizer BpeTokenizer::build(std::vector<std::string> id_to_token,
                                 std::vector<std::pair<std::string, std::string>> merges,
                                 const std::vector<int64_t>& merge_lines, const std::string& vocab_source,
                                 const std::string& merges_source) {
  BpeTokenizer tok;
  tok.id_to_token_ = std::move(id_to_token);
  tok.token_to_id_.reserve(tok.id_to_token_.size());
  for (size_t id = 0; id < tok.id_to_token_.size(); ++id) {
    const std::string& token = tok.id_to_token_[id];
    if (token.empty()) continue;
    auto [it, inserted] = tok.token_to_id_.emplace(token, static_cast<int32_t>(id));
    check(inserted, vocab_source, ": token \"", token, "\" has two ids, ", it->second, " and ", id);
  }
  auto id_of = [&](std::string_view token) {
    auto it = tok.token_to_id_.find(std::string(token));
    return it == tok.token_to_id_.end() ? int32_t{-1} : it->second;
  };
  tok.sot_id_ = id_of(kStartOfText);
  tok.eot_id_ = id_of(kEndOfText);
  check(tok.sot_id_ >= 0, vocab_source, " has no ", kStartOfText, ": not a CLIP-style vocabulary");
  check(tok.eot_id_ >= 0, vocab_source, " has no ", kEndOfText, ": not a CLIP-style vocabulary");
  for (int b = 0; b < 256; ++b) {
    for (bool end : {false, true}) {
      std::string symbol = byte_symbol(static_cast<uint8_t>(b), end);
      int32_t id = id_of(symbol);
      check(id >= 0, vocab_source, " has no token \"", symbol, "\" for byte 0x", "0123456789abcdef"[b >> 4],
            "0123456789abcdef"[b & 15], ": not a byte-level BPE vocabulary");
      (end ? tok.byte_end_id_ : tok.byte_id_)[b] = id;
    }
  }
  tok.merge_of_pair_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    std::string where = merge_lines.empty() ? str_cat(merges_source, ": merge ", rank + 1)
                                            : str_cat(merges_source, ":", merge_lines[rank]);
    int32_t a = id_of(left), b = id_of(right), merged = id_of(left + right);
    check(a >= 0, where, ": merge symbol \"", left, "\" is not in ", vocab_source);
    check(b >= 0, where, ": merge symbol \"", right, "\" is not in ", vocab_source);
    check(merged >= 0, where, ": merged token \"", left, right, "\" is not in ", vocab_source);
    // A repeated pair keeps its first (lowest) rank, as a dict built rank by rank would not: CLIP's
    // dict(zip(merges, range(len(merges)))) keeps the last, but CLIP's own files never repeat a pair.
    tok.merge_of_pair_.emplace(pair_key(a, b), Merge{static_cast<int32_t>(rank), merged});
  }
  tok.merges_ = std::move(merges);
  tok.cache_ = std::make_shared<WordCache>();
  return tok;
}

BpeTokenizer BpeTokenizer::from_tokens(std::vector<std::string> id_to_token,
                                       std::vector<std::pair<std::string, std::string>> merges,
                                       const std::string& vocab_source, const std::string& merges_source) {
  return build(std::move(id_to_token), std::move(merges), {}, vocab_source, merges_source);
}

BpeTokenizer BpeTokenizer::load(const fs::path& dir) {
  return from_files(dir / "vocab.json", dir / "merges.txt");
}

BpeTokenizer BpeTokenizer::from_files(const fs::path& vocab_json, const fs::path& merges_txt) {
  const std::string vocab_name = vocab_json.string(), merges_name = merges_txt.string();

  const nlohmann::json vocab = read_json_file(vocab_json);
  check(vocab.is_object(), vocab_name, ": expected a JSON object mapping token to id, got ",
        vocab.type_name());
  std::vector<std::string> id_to_token;
  for (const auto& [token, value] : vocab.items()) {
    check(value.is_number_integer(), vocab_name, ": token \"", token, "\": id must be an integer, got ",
          describe(value));
    int64_t id = value.get<int64_t>();
    check(id >= 0 && id <= kMaxTokenId, vocab_name, ": token \"", token, "\": id ", id, " is outside [0, ",
          kMaxTokenId, "]");
    check(!token.empty(), vocab_name, ": empty token for id ", id);
    if (static_cast<size_t>(id) >= id_to_token.size()) id_to_token.resize(id + 1);
    check(id_to_token[id].empty(), vocab_name, ": id ", id, " is used by \"", id_to_token[id], "\" and \"",
          token, "\"");
    id_to_token[id] = token;
  }

  std::string text = read_file(merges_txt);
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<int64_t> lines;
  int64_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // The header is optional ("#version: 0.2" in CLIP's and Hugging Face's files); blank lines carry nothing.
    if ((line_no == 1 && line.starts_with("#version")) || line.empty()) continue;
    size_t space = line.find(' ');
    bool two = space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
               line.find(' ', space + 1) == std::string_view::npos;
    check(two, merges_name, ":", line_no, ": expected two symbols separated by one space, got \"", line,
          "\"");
    merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
    lines.push_back(line_no);
  }
  return build(std::move(id_to_token), std::move(merges), lines, vocab_name, merges_name);
}

void BpeTokenizer::save(const fs::path& dir) const {
  // Written by hand in id order (nlohmann::ordered_json inserts in linear time per key, quadratic here).
  std::string vocab = "{";
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    if (id_to_token_[id].empty()) continue;
    vocab += str_cat(vocab.size() > 1 ? ",\n  " : "\n  ", nlohmann::json(id_to_token_[id]).dump(), ": ", id);
  }
  vocab += "\n}\n";
  std::string merges = "#version: 0.2\n";
  for (const auto& [left, right] : merges_) merges += str_cat(left, " ", right, "\n");
  write_file_atomic(dir / "vocab.json", vocab);
  write_file_atomic(dir / "merges.txt", merges);
}

std::vector<int32_t> BpeTokenizer::encode_word(const std::string& word) const {
  if (word == kStartOfText) return {static_cast<int32_t>(sot_id_)};
  if (word == kEndOfText) return {static_cast<int32_t>(eot_id_)};
  {
    std::shared_lock lock(cache_->mutex);
    auto it = cache_->words.find(word);
    if (it != cache_->words.end()) return it->second;
  }
  std::vector<int32_t> symbols(word.size());
  for (size_t k = 0; k < word.size(); ++k) {
    auto b = static_cast<uint8_t>(word[k]);
    symbols[k] = k + 1 == word.size() ? byte_end_id_[b] : byte_id_[b];
  }
  // CLIP's bpe(): find the adjacent pair with the lowest merge rank, merge all its occurrences left to
  // right, and repeat until no adjacent pair has a merge.
  while (symbols.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max(), left = -1, right = -1, merged = -1;
    for (size_t k = 0; k + 1 < symbols.size(); ++k) {
      auto it = merge_of_pair_.find(pair_key(symbols[k], symbols[k + 1]));
      if (it != merge_of_pair_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        left = symbols[k], right = symbols[k + 1], merged = it->second.merged_id;
      }
    }
    if (merged < 0) break;
    size_t out = 0;
    for (size_t k = 0; k < symbols.size(); ++k) {
      if (k + 1 < symbols.size() && symbols[k] == left && symbols[k + 1] == right) {
        symbols[out++] = merged;
        ++k;
      } else {
        symbols[out++] = symbols[k];
      }
    }
    symbols.resize(out);
  }
  std::unique_lock lock(cache_->mutex);
  if (cache_->words.size() >= WordCache::kMaxEntries) cache_->words.clear();
  cache_->words.emplace(word, symbols);
  return symbols;
}

std::vector<int64_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const std::string& word : clip_pre_tokenize(text))
    for (int32_t id : encode_word(word)) ids.push_back(id);
  return ids;
}

std::vector<int64_t> BpeTokenizer::encode_for_model(std::string_view text, int context_length) const {
  check(context_length >= 2, "context_length must be at least 2 (room for ", kStartOfText, " and ",
        kEndOfText, "), got ", context_length);
  std::vector<int64_t> ids;
  ids.reserve(context_length);
  ids.push_back(sot_id_);
  for (int64_t id : encode(text)) ids.push_back(id);
  ids.push_back(eot_id_);
  // clip.tokenize(truncate=True): tokens[:context_length], then the last one replaced by the end token,
  // whose position the text encoder pools at.
  if (ids.size() > static_cast<size_t>(context_length)) {
    ids.resize(context_length);
    ids.back() = eot_id_;
  }
  ids.resize(context_length, 0);
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  const ByteTable& table = byte_table();
  std::string bytes;
  for (int64_t id : ids) {
    check(id >= 0 && id < vocab_size() && !id_to_token_[id].empty(), "cannot decode token id ", id,
          ": not in the vocabulary (", vocab_size(), " ids)");
    if (id == eot_id_) break;  // what follows is padding
    if (id == sot_id_) continue;
    const std::string& token = id_to_token_[id];
    for (size_t pos = 0; pos < token.size();) {
      char32_t cp = next_codepoint(token, pos);
      int16_t b = cp < table.byte_of_symbol.size() ? table.byte_of_symbol[cp] : int16_t{-1};
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
      } else {
        append_utf8(bytes, cp);  // not a byte symbol (a foreign vocabulary's added token): keep it as text
      }
    }
  }
  // As CLIP: decode the bytes with errors="replace", then "</w>" -> " ".
  std::string text = encode_utf8(decode_utf8(bytes));
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    if (text.compare(pos, kEndOfWord.size(), kEndOfWord) == 0) {
      out.push_back(' ');
      pos += kEndOfWord.size();
    } else {
      out.push_back(text[pos++]);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<std::string> BpeTokenizer::tokens(std::string_view text) const {
  std::vector<std::string> out;
  for (int64_t id : encode(text)) out.push_back(id_to_token_[id]);
  return out;
}

}  // namespace mmlearn::text

namespace mmlearn::text {
namespace {

// State of BPE training over distinct words. Pair counts are updated incrementally from the words that
// contain the merged pair, so a merge costs time proportional to those words, not to the corpus.
class BpeTrainer {
 public:
  BpeTrainer(const std::vector<std::string>& texts, int64_t min_frequency) : min_frequency_(min_frequency) {
    for (const std::string& token : clip_byte_tokens()) add_token(token);

    std::unordered_map<std::string, int64_t> word_counts;
    for (const std::string& text : texts)
      for (std::string& word : clip_pre_tokenize(text))
        if (word != kStartOfText && word != kEndOfText) ++word_counts[std::move(word)];
    // Sorted so that word indices, and with them every container below, do not depend on hashing.
    std::vector<std::pair<std::string, int64_t>> sorted(word_counts.begin(), word_counts.end());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [word, count] : sorted) {
      std::vector<int32_t> symbols(word.size());
      for (size_t k = 0; k < word.size(); ++k) {
        auto b = static_cast<uint8_t>(word[k]);
        symbols[k] = token_ids_.at(byte_symbol(b, k + 1 == word.size()));
      }
      words_.push_back(std::move(symbols));
      word_counts_.push_back(count);
    }
    for (size_t w = 0; w < words_.size(); ++w) {
      const auto& s = words_[w];
      for (size_t k = 0; k + 1 < s.size(); ++k) {
        uint64_t key = pair_key(s[k], s[k + 1]);
        pair_counts_[key] += word_counts_[w];
        words_of_pair_[key].insert(static_cast<int32_t>(w));
      }
    }
    for (const auto& [key, count] : pair_counts_) heap_.push({count, key});
  }

  // Applies the best merge; false when none is frequent enough.
  bool merge_once() {
    std::optional<uint64_t> best = pop_best();
    if (!best) return false;
    int32_t a = static_cast<int32_t>(*best >> 32), b = static_cast<int32_t>(*best & 0xFFFFFFFFu);
    int32_t merged = add_token(tokens_[a] + tokens_[b]);
    merges_.emplace_back(tokens_[a], tokens_[b]);

    std::unordered_set<int32_t> affected = std::move(words_of_pair_[*best]);
    words_of_pair_.erase(*best);
    std::vector<int32_t> order(affected.begin(), affected.end());
    std::sort(order.begin(), order.end());
    std::unordered_map<uint64_t, int64_t> delta;
    for (int32_t w : order) {
      std::vector<int32_t>& s = words_[w];
      int64_t count = word_counts_[w];
      bool present = false;
      for (size_t k = 0; k + 1 < s.size() && !present; ++k) present = s[k] == a && s[k + 1] == b;
      if (!present) continue;  // stale entry: an earlier merge already consumed the pair in this word
      // Words are short, so retracting all of the word's pairs and adding the new ones back is simpler than
      // patching neighbours around each occurrence (which must handle runs like "a a a" for pair (a, a)).
      for (size_t k = 0; k + 1 < s.size(); ++k) delta[pair_key(s[k], s[k + 1])] -= count;
      size_t out = 0;
      for (size_t k = 0; k < s.size(); ++k) {
        if (k + 1 < s.size() && s[k] == a && s[k + 1] == b) {
          s[out++] = merged;
          ++k;
        } else {
          s[out++] = s[k];
        }
      }
      s.resize(out);
      for (size_t k = 0; k + 1 < s.size(); ++k) {
        uint64_t key = pair_key(s[k], s[k + 1]);
        delta[key] += count;
        words_of_pair_[key].insert(w);
      }
    }
    for (const auto& [key, change] : delta) {
      if (change == 0) continue;
      int64_t& count = pair_counts_[key];
      count += change;
      // Counts only grow for pairs that contain the new token; other pairs keep their (now too high) heap
      // entries, which pop_best() corrects when they surface.
      if (change > 0) heap_.push({count, key});
      if (count <= 0) pair_counts_.erase(key);
    }
    return true;
  }

  int64_t token_count() const { return static_cast<int64_t>(tokens_.size()); }

  BpeTokenizer finish() {
    tokens_.emplace_back(kStartOfText);
    tokens_.emplace_back(kEndOfText);
    return BpeTokenizer::from_tokens(std::move(tokens_), std::move(merges_));
  }

 private:
  struct Entry {
    int64_t count;
    uint64_t pair;
  };

  int32_t add_token(const std::string& token) {
    // Two merges can spell the same string ("ab"+"c", "a"+"bc"); they share one id, as in a vocab.json.
    auto [it, inserted] = token_ids_.emplace(token, static_cast<int32_t>(tokens_.size()));
    if (inserted) tokens_.push_back(token);
    return it->second;
  }

  // Most frequent pair, ties to the lexicographically smallest (left, right) strings. Heap entries may be
  // stale (count above the pair's current count): those are re-queued with the current count.
  std::optional<uint64_t> pop_best() {
    while (!heap_.empty()) {
      Entry top = heap_.top();
      heap_.pop();
      auto it = pair_counts_.find(top.pair);
      int64_t current = it == pair_counts_.end() ? 0 : it->second;
      if (current != top.count) {
        if (current > 0) heap_.push({current, top.pair});
        continue;
      }
      if (current < min_frequency_) return std::nullopt;
      return top.pair;
    }
    return std::nullopt;
  }

  struct Lower {
    const std::vector<std::string>* tokens;
    bool operator()(const Entry& x, const Entry& y) const {  // true when x ranks below y
      if (x.count != y.count) return x.count < y.count;
      const auto& t = *tokens;
      auto ka = static_cast<int32_t>(x.pair >> 32), kb = static_cast<int32_t>(x.pair & 0xFFFFFFFFu);
      auto ya = static_cast<int32_t>(y.pair >> 32), yb = static_cast<int32_t>(y.pair & 0xFFFFFFFFu);
      if (t[ka] != t[ya]) return t[ka] > t[ya];
      return t[kb] > t[yb];
    }
  };

  int64_t min_frequency_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> token_ids_;
  std::vector<std::pair<std::string, std::string>> merges_;
  std::vector<std::vector<int32_t>> words_;
  std::vector<int64_t> word_counts_;
  std::unordered_map<uint64_t, int64_t> pair_counts_;
  std::unordered_map<uint64_t, std::unordered_set<int32_t>> words_of_pair_;
  std::priority_queue<Entry, std::vector<Entry>, Lower> heap_{Lower{&tokens_}};
};

}  // namespace

BpeTokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& options,
                       const std::function<void(int64_t merges_done, int64_t merges_total)>& progress) {
  check(options.vocab_size >= 514,
        "vocab_size must be at least 514 (512 byte symbols and 2 special tokens), got ", options.vocab_size);
  check(options.vocab_size <= kMaxTokenId, "vocab_size must be at most ", kMaxTokenId, ", got ",
        options.vocab_size);
  check(options.min_frequency >= 1, "min_frequency must be at least 1, got ", options.min_frequency);
  BpeTrainer trainer(texts, options.min_frequency);
  const int64_t merges_total = options.vocab_size - 514;
  int64_t merges_done = 0;
  while (trainer.token_count() < options.vocab_size - 2 && trainer.merge_once()) {
    ++merges_done;
    if (progress) progress(merges_done, merges_total);
  }
  return trainer.finish();
}

std::string gpt2_symbols_of_bytes(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) append_utf8(out, byte_table().symbol_of_byte[b]);
  return out;
}

std::optional<std::string> gpt2_bytes_of_symbols(std::string_view symbols) {
  std::string out;
  for (size_t pos = 0; pos < symbols.size();) {
    const char32_t cp = next_codepoint(symbols, pos);
    if (cp >= 512 || byte_table().byte_of_symbol[cp] < 0) return std::nullopt;
    out += static_cast<char>(byte_table().byte_of_symbol[cp]);
  }
  return out;
}

}  // namespace mmlearn::text
