// Paired image–text data in memory, ready for contrastive training and evaluation: images decoded once to the
// model's size (uint8, [N, 3, S, S]) and texts tokenized ([N, T]). Records that cannot be used (missing or
// corrupt image, missing text) are skipped and counted; the first few reasons are kept for the user.
//
//   auto ds = mmlearn::data::load_image_text("shapes/train.jsonl", tokenizer, 64, 32);
//   if (ds.skipped) warn(ds.skipped, " records skipped, e.g. ", ds.skip_reasons[0]);
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mmlearn/data/image_io.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/text/bpe.h"

namespace mmlearn::data {

struct ImageTextDataset {
  Manifest manifest;     // the records that were kept, in manifest order
  torch::Tensor images;  // uint8 [N, 3, S, S]
  torch::Tensor ids;     // int64 [N, T]
  std::vector<std::string> texts;
  int64_t skipped = 0;
  std::vector<std::string> skip_reasons;  // at most a few, "file:line: reason"
  int64_t size() const { return static_cast<int64_t>(texts.size()); }
};

struct ImageTextOptions {
  int64_t image_size = 64;
  int64_t context_length = 32;
  DecodeOptions decode;
  bool skip_bad_records = true;  // false: the first bad record is an error
};

ImageTextDataset load_image_text(const std::filesystem::path& manifest, const text::BpeTokenizer& tokenizer,
                                 const ImageTextOptions& options);

}  // namespace mmlearn::data
