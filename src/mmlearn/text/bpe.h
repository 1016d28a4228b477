// Byte-level BPE tokenizer with OpenAI CLIP's semantics, read from and written to the Hugging Face file
// layout (vocab.json: token -> id, merges.txt: "#version" header then one "a b" merge per line), plus a
// trainer that produces a vocabulary laid out like CLIP's.
//
// Encoding follows CLIP's simple_tokenizer.py
// (https://github.com/openai/CLIP/blob/main/clip/simple_tokenizer.py): collapse whitespace and strip,
// lower-case, split into words with CLIP's pattern, map each word's UTF-8 bytes to GPT-2's printable byte
// symbols, mark the last symbol with "</w>", and apply merges lowest rank first. Not reproduced: CLIP's
// basic_clean (ftfy.fix_text with its NFC normalization, and html.unescape), so text that differs only by
// Unicode normalization or HTML entities can tokenize differently than in CLIP.
//
//   auto tok = mmlearn::text::BpeTokenizer::load("/work/shared/assets/clip");
//   std::vector<int64_t> ids = tok.encode_for_model("a photo of a cat", 77);  // 49406 320 ... 49407 0 ...
//   std::string text = tok.decode(ids);                                       // "a photo of a cat"
//
//   auto trained = mmlearn::text::train_bpe(captions, {.vocab_size = 8192});
//   trained.save("run/tokenizer");
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mmlearn::text {

inline constexpr std::string_view kStartOfText = "<|startoftext|>";
inline constexpr std::string_view kEndOfText = "<|endoftext|>";
// Ids index dense tables, so a vocabulary with larger ids is rejected rather than allocated.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// CLIP's text normalization and word split: whitespace_clean, lower(), then the matches of
// <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ in order.
// Words are UTF-8; ill-formed input bytes become U+FFFD first.
std::vector<std::string> clip_pre_tokenize(std::string_view text);

// The first 512 tokens of CLIP's vocabulary, by id: GPT-2's printable symbol for each byte in the order of
// simple_tokenizer.py's bytes_to_unicode(), then the same symbols + "</w>".
std::vector<std::string> clip_byte_tokens();

// GPT-2's printable stand-ins for bytes (bytes_to_unicode), as vocab.json files spell byte-level tokens:
// raw bytes -> their symbols, and back (nullopt when `symbols` holds a character that stands for no byte).
std::string gpt2_symbols_of_bytes(std::string_view bytes);
std::optional<std::string> gpt2_bytes_of_symbols(std::string_view symbols);

struct BpeTrainOptions {
  int64_t vocab_size = 4096;  // including the 512 byte symbols and the 2 special tokens
  int64_t min_frequency = 2;  // stop when the most frequent pair occurs fewer times than this
};

class BpeTokenizer {
 public:
  // dir/vocab.json + dir/merges.txt. Throws mmlearn::Error naming the file (and line) on bad input.
  static BpeTokenizer load(const std::filesystem::path& dir);
  static BpeTokenizer from_files(const std::filesystem::path& vocab_json,
                                 const std::filesystem::path& merges_txt);
  // In memory: token of each id ("" for unused ids) and the merges in rank order; validated as the files,
  // with errors naming vocab_source and merges_source (where the tokens and merges were read from).
  static BpeTokenizer from_tokens(std::vector<std::string> id_to_token,
                                  std::vector<std::pair<std::string, std::string>> merges,
                                  const std::string& vocab_source = "vocabulary",
                                  const std::string& merges_source = "merges");
  // Writes dir/vocab.json (ordered by id) and dir/merges.txt atomically, creating dir if needed.
  void save(const std::filesystem::path& dir) const;

  // Token ids of text, without special tokens. Thread-safe.
  std::vector<int64_t> encode(std::string_view text) const;
  // <|startoftext|> + tokens + <|endoftext|>, cut to context_length with <|endoftext|> kept as the last
  // token (as clip.tokenize(truncate=True)), then padded with 0 up to context_length.
  std::vector<int64_t> encode_for_model(std::string_view text, int context_length) const;
  // Inverse of encode: bytes back to UTF-8 (ill-formed sequences -> U+FFFD), "</w>" -> " ",
  // <|startoftext|> skipped, and decoding stops at <|endoftext|> (what follows is padding, id 0 = "!").
  // Unlike CLIP's decode the trailing space is stripped, so decode(encode(x)) is x normalized (whitespace
  // collapsed, lower-cased, words separated by one space). Throws mmlearn::Error on an unknown id.
  std::string decode(const std::vector<int64_t>& ids) const;
  // Token strings of encode(text) as they appear in vocab.json, e.g. "photo</w>".
  std::vector<std::string> tokens(std::string_view text) const;

  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }  // largest id + 1
  int64_t sot_id() const { return sot_id_; }
  int64_t eot_id() const { return eot_id_; }
  int64_t merge_count() const { return static_cast<int64_t>(merges_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };
  struct WordCache;

  BpeTokenizer() = default;
  // Indexes the vocabulary and merges; `vocab_source`/`merges_source` name the files in error messages and
  // merge_lines gives each merge's line number in merges_source (empty when built in memory).
  static BpeTokenizer build(std::vector<std::string> id_to_token,
                            std::vector<std::pair<std::string, std::string>> merges,
                            const std::vector<int64_t>& merge_lines, const std::string& vocab_source,
                            const std::string& merges_source);
  std::vector<int32_t> encode_word(const std::string& word) const;

  std::vector<std::string> id_to_token_;  // "" for ids that no token uses
  std::unordered_map<std::string, int32_t> token_to_id_;
  std::vector<std::pair<std::string, std::string>> merges_;  // in rank order, kept for save()
  std::unordered_map<uint64_t, Merge> merge_of_pair_;        // key: (left id << 32) | right id
  std::array<int32_t, 256> byte_id_{};                       // symbol of a byte inside a word
  std::array<int32_t, 256> byte_end_id_{};                   // symbol of a word's last byte ("...</w>")
  int64_t sot_id_ = -1, eot_id_ = -1;
  std::shared_ptr<WordCache> cache_;  // shared by copies: the merges it memoizes are immutable
};

// Learns merges from texts (pre-tokenized as clip_pre_tokenize). Vocabulary as CLIP's: 256 byte symbols,
// the same + "</w>", one token per merge in merge order (two merges that spell the same string share one),
// then <|startoftext|>, <|endoftext|>. Ties between equally frequent pairs go to the lexicographically
// smallest (left, right) token strings, so the output depends only on the texts and options. progress, if
// set, is called after each merge.
BpeTokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& options = {},
                       const std::function<void(int64_t merges_done, int64_t merges_total)>& progress = {});

}  // namespace mmlearn::text
