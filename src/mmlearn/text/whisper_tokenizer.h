// Whisper's tokenizer: GPT-2's byte-level BPE (tiktoken's ranks: the pair whose concatenation has the lowest
// rank merges first) plus Whisper's special tokens after the base vocabulary, in its order: <|endoftext|>,
// <|startoftranscript|>, one token per language, <|translate|>, <|transcribe|>, <|startoflm|>,
// <|startofprev|>, <|nospeech|>, <|notimestamps|>, then the timestamps <|0.00|> ... <|30.00|> every 20 ms.
// Read from OpenAI's *.tiktoken files or from a Hugging Face directory (vocab.json, whose ids are the same
// ranks, and the special tokens of added_tokens.json / tokenizer.json / tokenizer_config.json).
//
//   auto tok = mmlearn::text::WhisperTokenizer::load("whisper-base", 51865);   // directory or .tiktoken file
//   auto prompt = tok.sot_sequence("en", "transcribe");   // 50258 50259 50359
//   std::string text = tok.decode(ids);                    // text tokens only
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mmlearn::text {

// GPT-2's split of text into pieces before BPE (tiktoken's "gpt2" pattern):
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::string> gpt2_pre_tokenize(std::string_view text);

// Whisper's language codes in token order (the first num_languages of these have tokens).
const std::vector<std::string>& whisper_language_codes();

// Learns a byte-level vocabulary in tiktoken's form (the 256 bytes, then one token per merge, most frequent
// pair first; ties to the smallest bytes) from texts split as gpt2_pre_tokenize does: the base of a
// tokenizer for a Whisper-architecture model trained from scratch. Deterministic.
std::vector<std::string> train_byte_ranks(const std::vector<std::string>& texts, int64_t vocab_size);

class WhisperTokenizer {
 public:
  // `num_languages` language tokens follow <|startoftranscript|> (99, or 100 from large-v3 on).
  static WhisperTokenizer from_tiktoken(const std::filesystem::path& file, int num_languages);
  static WhisperTokenizer from_hf_dir(const std::filesystem::path& dir);
  // A .tiktoken file, a directory with one (multilingual.tiktoken or gpt2.tiktoken), or a Hugging Face
  // directory; n_vocab is the model's vocabulary size, from which OpenAI's rule derives the language count.
  static WhisperTokenizer load(const std::filesystem::path& path, int64_t n_vocab);
  // In memory: the bytes of each base token by id (id = rank), and the language count.
  static WhisperTokenizer from_ranks(std::vector<std::string> token_bytes, int num_languages,
                                     const std::string& where);

  // Writes the base vocabulary as a .tiktoken file (base64 bytes and rank per line), atomically.
  void save_tiktoken(const std::filesystem::path& file) const;

  std::vector<int64_t> encode(std::string_view text) const;  // ordinary text; no special tokens
  // Text tokens as UTF-8; special tokens are skipped, or with `specials` written by name as Whisper's
  // decode() does (timestamps are always skipped).
  std::string decode(const std::vector<int64_t>& ids, bool specials = false) const;
  // Every token, special ones and timestamps by name: "<|startoftranscript|><|0.00|> Hi<|1.20|>".
  std::string decode_with_timestamps(const std::vector<int64_t>& ids) const;
  std::string token_text(int64_t id) const;  // the token's bytes, or a special token's name

  std::optional<int64_t> special(std::string_view name) const;  // e.g. "<|en|>"
  int64_t language_token(std::string_view code) const;          // throws on an unknown code
  std::optional<std::string> language_of(int64_t token) const;
  // <|startoftranscript|> [<|lang|> <|task|>] as Whisper starts decoding (language "" / task "": omitted).
  std::vector<int64_t> sot_sequence(const std::string& language, const std::string& task) const;
  // Whisper's non_speech_tokens: symbols and music signs suppressed so that the model does not transcribe
  // speaker tags or sound descriptions.
  std::vector<int64_t> non_speech_tokens() const;

  int64_t vocab_size() const { return timestamp_begin + 1501; }
  int64_t base_size() const { return static_cast<int64_t>(bytes_of_id_.size()); }
  const std::vector<std::string>& languages() const { return languages_; }

  int64_t eot = -1, sot = -1, translate = -1, transcribe = -1, sot_lm = -1, sot_prev = -1, no_speech = -1,
          no_timestamps = -1, timestamp_begin = -1;

 private:
  std::vector<int64_t> encode_piece(const std::string& piece) const;

  std::vector<std::string> bytes_of_id_;
  std::unordered_map<std::string, int64_t> id_of_bytes_;
  std::vector<std::string> languages_;
  std::map<std::string, int64_t, std::less<>> special_ids_;
};

}  // namespace mmlearn::text
