// Audio + text records of a manifest ("audio": a path, "text": a string), decoded once at 16 kHz and cut to
// one model window, kept as 16-bit samples to halve the memory: what the speech recognizer and the audio–text
// model train and are evaluated on. A shard set is streamed instead: batch() decodes what it is asked for.
// Features are made per batch exactly as transcription and embedding make them (audio/log_mel.h
// window_features).
//
//   auto ds = mmlearn::data::load_audio_text("shapes/train.jsonl", 8 * 16000);
//   auto mel = mmlearn::data::log_mel_batch({&ds.clips[0], &ds.clips[1]}, 80, 800);  // [2, 80, 800]
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mmlearn/data/streamed_records.h"

namespace mmlearn::data {

struct AudioClip {
  std::vector<int16_t> samples;  // 16 kHz mono, at most one window
  std::string text;
};

struct AudioTextDataset {
  std::vector<AudioClip> clips;  // decoded up front
  int64_t skipped = 0;           // records that could not be read (the first few are logged)
  std::shared_ptr<const StreamedRecords> streamed;  // a streamed set's records
  int64_t window_samples = 0;

  int64_t size() const;
  SkipLog skip_log() const { return streamed ? streamed->skipped().log() : SkipLog{skipped, {}}; }
  std::vector<std::string> texts() const;  // every example's text
  std::vector<AudioClip> batch(const std::vector<int64_t>& indices) const;
};

// One audio file, decoded and cut to the window; `name` (default: the path) is what errors call it.
AudioClip read_audio_clip(const std::filesystem::path& path, int64_t window_samples,
                          const std::string& name = "");

// A manifest file's records decoded up front (`limit` > 0: only the first `limit` usable ones); a shard
// set's streamed.
AudioTextDataset load_audio_text(Manifest manifest, int64_t window_samples, int64_t limit = 0);
AudioTextDataset load_audio_text(const std::filesystem::path& manifest, int64_t window_samples,
                                 int64_t limit = 0);

// Log-mel features [B, n_mels, window_frames] of a batch of clips.
torch::Tensor log_mel_batch(const std::vector<const AudioClip*>& batch, int64_t n_mels,
                            int64_t window_frames);

}  // namespace mmlearn::data
