// Opens a CLIP vocabulary in any of the layouts it is shipped in, as a BpeTokenizer:
//  - Hugging Face's vocab.json + merges.txt (read by BpeTokenizer::load);
//  - Hugging Face's tokenizer.json, the "fast" tokenizer file: model.vocab, model.merges, added_tokens;
//  - OpenAI's bpe_simple_vocab_16e6.txt.gz (openai/CLIP, open_clip): gzip-compressed merges, from which
//    the vocabulary is derived as simple_tokenizer.py derives it.
// For CLIP's vocabulary all three give the same ids.
//
// Of tokenizer.json only the vocabulary and merges are read: the normalizer and pre-tokenizer are taken to
// be CLIP's (CLIPTokenizerFast's NFC, whitespace collapsing and lower-casing, CLIP's split pattern and the
// byte-level mapping), which BpeTokenizer applies except for NFC (see bpe.h). Added tokens keep their ids,
// but only <|startoftext|> and <|endoftext|> are recognized as whole tokens in text.
//
//   auto tok = mmlearn::text::load_clip_tokenizer("assets/clip/bpe_simple_vocab_16e6.txt.gz");
//   auto hf = mmlearn::text::load_clip_tokenizer("models/clip-vit-base-patch32");  // a directory
#pragma once

#include <filesystem>

#include "mmlearn/text/bpe.h"

namespace mmlearn::text {

// path is a file (*.gz: OpenAI's merges; vocab.json or merges.txt: that pair in its folder; any other
// *.json: tokenizer.json) or a directory holding, by preference, vocab.json + merges.txt, tokenizer.json,
// bpe_simple_vocab_16e6.txt.gz, or a single *.txt.gz. Throws mmlearn::Error naming the file and the line
// or field at fault, or what was looked for when a directory holds none of these.
BpeTokenizer load_clip_tokenizer(const std::filesystem::path& path);

}  // namespace mmlearn::text
