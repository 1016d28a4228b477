// A record's media, decoded for a model: its image at the model's size and its audio cut to the model's
// window, read from the file a manifest names or, for a shard set's sample, from its member in the shard.
// Errors name the record ("file.jsonl:12: ..." or "shard.tar: sample KEY: ...").
//
//   auto pixels = mmlearn::data::read_record_image(manifest, manifest.records[0], 64);  // uint8 [3, 64, 64]
//   auto clip = mmlearn::data::read_record_audio(manifest, manifest.records[0], 8 * 16000);
#pragma once

#include <torch/types.h>

#include "mmlearn/data/audio_text_dataset.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/data/manifest.h"

namespace mmlearn::data {

torch::Tensor read_record_image(const Manifest& manifest, const Record& record, int64_t size,
                                const DecodeOptions& decode = {});

AudioClip read_record_audio(const Manifest& manifest, const Record& record, int64_t window_samples);

}  // namespace mmlearn::data
