// Paired image–text data, ready for contrastive training and evaluation. A manifest's records are decoded
// once, up front: images to the model's size (uint8, [N, 3, S, S]) and texts tokenized ([N, T]); records
// that cannot be used (missing or corrupt image, missing text) are skipped and counted, the first few
// reasons kept for the user. A shard set is streamed instead: batch() decodes the examples it is asked for
// (data/streamed_records.h), so a set far larger than memory trains.
//
//   auto ds = mmlearn::data::load_image_text("shapes/train.jsonl", tokenizer, {.image_size = 64});
//   if (ds.skipped) warn(ds.skipped, " records skipped, e.g. ", ds.skip_reasons[0]);
//   auto [pixels, ids] = ds.batch({3, 1, 4});
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mmlearn/data/image_io.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/data/streamed_records.h"
#include "mmlearn/text/bpe.h"

namespace mmlearn::data {

struct ImageTextOptions {
  int64_t image_size = 64;
  int64_t context_length = 32;
  DecodeOptions decode;
  bool skip_bad_records = true;  // false: the first bad record is an error
};

struct ImageTextDataset {
  Manifest manifest;     // the records that were kept, in manifest order (decoded up front)
  torch::Tensor images;  // uint8 [N, 3, S, S] (decoded up front)
  torch::Tensor ids;     // int64 [N, T] (decoded up front)
  std::vector<std::string> texts;
  int64_t skipped = 0;
  std::vector<std::string> skip_reasons;  // at most a few, "file:line: reason"
  // A streamed set: its records, and how batch() makes them.
  std::shared_ptr<const StreamedRecords> streamed;
  const text::BpeTokenizer* tokenizer = nullptr;
  ImageTextOptions options;

  int64_t size() const { return streamed ? streamed->size() : static_cast<int64_t>(texts.size()); }
  SkipLog skip_log() const { return streamed ? streamed->skipped().log() : SkipLog{skipped, skip_reasons}; }
  // The pixels (uint8 [B, 3, S, S]) and token ids ([B, T]) of examples `indices`.
  std::pair<torch::Tensor, torch::Tensor> batch(const std::vector<int64_t>& indices) const;
};

// A manifest file's records decoded up front; a shard set's streamed. `tokenizer` must outlive the data set.
ImageTextDataset load_image_text(Manifest manifest, const text::BpeTokenizer& tokenizer,
                                 const ImageTextOptions& options);
ImageTextDataset load_image_text(const std::filesystem::path& manifest, const text::BpeTokenizer& tokenizer,
                                 const ImageTextOptions& options);

// The edited pictures ("target") of edit triplets (`sources` loaded from "image", with "text" the
// instruction), row for row with `sources`; triplets whose target cannot be read leave `sources` too, counted
// as skipped. A record without "target" is an error.
torch::Tensor load_targets(ImageTextDataset& sources, const text::BpeTokenizer& tokenizer,
                           const ImageTextOptions& load);

}  // namespace mmlearn::data
