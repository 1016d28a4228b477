// Labelled multimodal records of a manifest, for classification: any of "image" (a path), "text" (a string)
// and "audio" (a path), plus a label field. A record may lack some modalities (they are then absent for it,
// and a model masks them) but not all of the ones asked for. Images are decoded once to uint8 at the model's
// size; audio is decoded once at 16 kHz, cut to the model's window and kept as 16-bit samples. A shard set is
// streamed instead: its labels are read up front, its media by batch().
//
//   auto ds = mmlearn::data::load_multimodal("mood/train.jsonl", {.modalities = {"image", "text"}});
//   ds.labels;                 // sorted label names, learned from the data unless given
//   ds.examples[0].label;      // index into ds.labels
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmlearn/data/audio_text_dataset.h"

namespace mmlearn::data {

struct MultimodalExample {
  std::string id;        // the record's "id", or file:line
  torch::Tensor pixels;  // uint8 [3, S, S]; undefined when the record has no image
  std::optional<std::string> text;
  std::optional<AudioClip> audio;
  int64_t label = -1;  // index into the data set's labels; -1 when unlabelled
};

struct MultimodalOptions {
  std::vector<std::string> modalities = {"image", "text"};
  std::vector<std::string> labels;  // empty: every label seen, sorted; else an unknown label is an error
  std::string label_field = "label";
  bool require_labels = true;
  int64_t image_size = 48;
  int64_t audio_window_samples = 4 * 16000;
};

struct MultimodalDataset {
  std::vector<MultimodalExample> examples;  // decoded up front
  std::vector<std::string> labels;
  int64_t skipped = 0;  // records whose media could not be read (the first few are logged)
  // A streamed set: its records, each one's label, and what batch() reads.
  std::shared_ptr<const StreamedRecords> streamed;
  std::vector<int64_t> streamed_labels;
  MultimodalOptions options;

  int64_t size() const;
  SkipLog skip_log() const { return streamed ? streamed->skipped().log() : SkipLog{skipped, {}}; }
  std::vector<MultimodalExample> batch(const std::vector<int64_t>& indices) const;
};

// Throws mmlearn::Error naming file and line for a record with none of the modalities, a label of the
// wrong type or one not in `labels`. A manifest file's records are decoded up front; a shard set's streamed.
MultimodalDataset load_multimodal(Manifest manifest, const MultimodalOptions& options);
MultimodalDataset load_multimodal(const std::filesystem::path& manifest, const MultimodalOptions& options);

}  // namespace mmlearn::data
