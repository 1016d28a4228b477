// A byte-level BPE tokenizer learned from the "text" fields (or others) of a manifest (or shard set), with a
// progress bar: what a model trained from scratch reads its text with.
//
//   mmlearn::text::BpeTokenizer t = mmlearn::text::learn_tokenizer("shapes/train.jsonl", 1024);
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mmlearn/data/manifest.h"
#include "mmlearn/text/bpe.h"

namespace mmlearn::text {

// The smallest vocabulary learn_tokenizer makes: the 512 byte symbols (with and without the end-of-word
// mark) and the 2 special tokens.
constexpr int64_t kMinLearnedVocab = 514;

// A UsageError naming --vocab-size when the size is below kMinLearnedVocab.
BpeTokenizer learn_tokenizer(const data::Manifest& manifest, int64_t vocab_size,
                             const std::vector<std::string>& fields = {"text"});
BpeTokenizer learn_tokenizer(const std::filesystem::path& manifest, int64_t vocab_size);

}  // namespace mmlearn::text
