#include "mmlearn/eval/transcription_eval.h"

#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/audio_text_dataset.h"
#include "mmlearn/eval/wer.h"
#include "mmlearn/models/whisper_decoding.h"

namespace mmlearn {
using data::AudioClip;
using nlohmann::json;

json evaluate_transcription(WhisperBundle& w, const std::filesystem::path& manifest, int64_t limit,
                            int64_t batch_size) {
  const int64_t window_frames = 2 * w.model->config.n_audio_ctx;
  const auto ds = data::load_audio_text(manifest, window_frames * audio::whisper::hop_length, limit);
  const auto& clips = ds.clips;
  check(!clips.empty(), manifest.string(), ": no usable audio + text records to transcribe (", ds.skipped,
        " skipped); a recognizer is evaluated on records with \"audio\" and \"text\"");
  std::vector<std::string> references, hypotheses;
  WhisperDecodeOptions o{.without_timestamps = true};
  if (w.multilingual) o.language = "en";
  for (size_t start = 0; start < clips.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<const AudioClip*> batch;
    for (size_t i = start; i < std::min(clips.size(), start + static_cast<size_t>(batch_size)); ++i)
      batch.push_back(&clips[i]);
    auto results = decode_whisper(w, data::log_mel_batch(batch, w.model->config.n_mels, window_frames), o);
    for (size_t i = 0; i < batch.size(); ++i) {
      references.push_back(batch[i]->text);
      hypotheses.push_back(results[i].text);
    }
  }
  const auto wer = word_error_rate(references, hypotheses), cer = char_error_rate(references, hypotheses);
  json examples = json::array();
  for (size_t i = 0; i < std::min<size_t>(5, references.size()); ++i)
    examples.push_back({{"reference", references[i]}, {"hypothesis", hypotheses[i]}});
  return {{"wer", wer.rate()},
          {"cer", cer.rate()},
          {"samples", references.size()},
          {"skipped", ds.skipped},
          {"examples", examples}};
}

}  // namespace mmlearn
