// BERT's tokenizer, as Hugging Face's BertTokenizer runs it (BLIP's text models read it):
//   basic tokenization: drop NUL, U+FFFD and control characters, map whitespace to spaces, put spaces around
//     CJK ideographs, split on whitespace; per word lower-case and strip accents (uncased vocabularies), then
//     split off every punctuation character;
//   WordPiece: each word, greedily, as the longest vocabulary entry from its start, then the longest "##"
//     continuation, and so on; a word that cannot be covered (or is over 100 characters) is [UNK].
// Special tokens ([CLS], [SEP], [PAD], [MASK], [UNK] and added ones such as BLIP's [DEC] and [ENC]) written
// in the text are kept whole. Read from vocab.txt (with tokenizer_config.json and added_tokens.json beside
// it) or from tokenizer.json (its BertNormalizer settings and WordPiece model); every size is bounded.
//
//   auto tok = mmlearn::text::WordPieceTokenizer::load("blip-image-captioning-base");  // a directory
//   std::vector<int64_t> ids = tok.encode_with_specials("What is on the table?");  // [CLS] ... [SEP]
//   std::string text = tok.decode(ids);   // "what is on the table?"
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

namespace mmlearn::text {

struct WordPieceOptions {
  bool lower_case = true;
  bool strip_accents = true;  // Hugging Face: unset follows lower_case
  bool split_chinese = true;
  std::string unk = "[UNK]", prefix = "##";
  int64_t max_word_chars = 100;
};

class WordPieceTokenizer {
 public:
  // A directory (vocab.txt preferred, else tokenizer.json), a vocab.txt or a tokenizer.json. Errors name the
  // file and the line or field at fault.
  static WordPieceTokenizer load(const std::filesystem::path& path);
  // id_to_token[i] is token i (a vocab.txt's lines, then any added tokens).
  static WordPieceTokenizer from_tokens(std::vector<std::string> id_to_token, WordPieceOptions options,
                                        std::vector<std::string> specials);

  std::vector<int64_t> encode(const std::string& text) const;                // no [CLS] or [SEP]
  std::vector<int64_t> encode_with_specials(const std::string& text) const;  // [CLS] text [SEP]
  // Tokens joined by spaces, "##" continuations glued on, special tokens left out, and the spaces before
  // punctuation and contractions taken out as Hugging Face's clean-up does.
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }
  // The id of `token`, or -1.
  int64_t find(const std::string& token) const;
  // The id of a token the model needs; an Error naming it when the vocabulary lacks it.
  int64_t id(const std::string& token) const;
  const std::string& token(int64_t id) const { return id_to_token_.at(static_cast<size_t>(id)); }
  const WordPieceOptions& options() const { return options_; }

  // The basic tokenizer's words, before WordPiece (exposed for tests).
  std::vector<std::string> basic_tokens(const std::string& text) const;

 private:
  void word_pieces(const std::string& word, std::vector<int64_t>& out) const;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int64_t> token_to_id_;
  std::vector<std::string> specials_;  // kept whole in text, longest first
  WordPieceOptions options_;
};

}  // namespace mmlearn::text
