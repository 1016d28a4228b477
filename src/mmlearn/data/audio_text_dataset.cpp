#include "mmlearn/data/audio_text_dataset.h"

#include <torch/torch.h>

#include <cmath>

#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/data/record_media.h"

namespace mmlearn::data {

AudioClip read_audio_clip(const std::filesystem::path& path, int64_t window_samples,
                          const std::string& name) {
  auto samples = audio::load_audio(path, {.max_seconds = 3600, .name = name});
  if (static_cast<int64_t>(samples.size()) > window_samples)
    samples.resize(static_cast<size_t>(window_samples));
  AudioClip clip;
  clip.samples.reserve(samples.size());
  for (float v : samples)
    clip.samples.push_back(static_cast<int16_t>(std::lrint(std::clamp(v, -1.0f, 0.99997f) * 32768.0f)));
  return clip;
}

namespace {

// A record's clip and text, as up-front decoding and streaming both read it.
AudioClip read_example(const Manifest& manifest, const Record& record, int64_t window_samples) {
  std::string text = string_field(manifest, record, "text");
  AudioClip clip = read_record_audio(manifest, record, window_samples);
  clip.text = std::move(text);
  return clip;
}

}  // namespace

int64_t AudioTextDataset::size() const {
  return streamed ? streamed->size() : static_cast<int64_t>(clips.size());
}

std::vector<std::string> AudioTextDataset::texts() const {
  std::vector<std::string> out;
  if (!streamed) {
    for (const auto& c : clips) out.push_back(c.text);
    return out;
  }
  for (const auto& r : streamed->manifest().records)
    if (r.json.contains("text") && r.json["text"].is_string()) out.push_back(r.json["text"]);
  return out;
}

std::vector<AudioClip> AudioTextDataset::batch(const std::vector<int64_t>& indices) const {
  std::vector<AudioClip> out;
  for (int64_t i : indices) {
    if (!streamed) {
      out.push_back(clips.at(static_cast<size_t>(i)));
      continue;
    }
    out.push_back(streamed->decode(
        i, [&](const Record& r) { return read_example(streamed->manifest(), r, window_samples); }));
  }
  return out;
}

AudioTextDataset load_audio_text(const std::filesystem::path& manifest_path, int64_t window_samples,
                                 int64_t limit) {
  return load_audio_text(read_manifest(manifest_path), window_samples, limit);
}

AudioTextDataset load_audio_text(Manifest manifest, int64_t window_samples, int64_t limit) {
  AudioTextDataset ds;
  ds.window_samples = window_samples;
  if (!manifest.shards.empty()) {
    ds.streamed = std::make_shared<StreamedRecords>(std::move(manifest));
    return ds;
  }
  for (const auto& record : manifest.records) {
    if (limit > 0 && static_cast<int64_t>(ds.clips.size()) >= limit) break;
    try {
      ds.clips.push_back(read_example(manifest, record, window_samples));
    } catch (const Error& e) {
      if (ds.skipped++ < 5) log_warn("skipping ", e.what());
    }
  }
  return ds;
}

torch::Tensor log_mel_batch(const std::vector<const AudioClip*>& batch, int64_t n_mels,
                            int64_t window_frames) {
  std::vector<torch::Tensor> mels;
  for (const AudioClip* c : batch) {
    auto audio = torch::empty({static_cast<int64_t>(c->samples.size())}, torch::kFloat);
    float* p = audio.data_ptr<float>();
    for (size_t i = 0; i < c->samples.size(); ++i) p[i] = c->samples[i] / 32768.0f;
    mels.push_back(audio::window_features(audio, n_mels, window_frames));
  }
  return torch::stack(mels);
}

}  // namespace mmlearn::data
