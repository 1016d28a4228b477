#include "mmlearn/search/indexing.h"

#include <set>

#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/audio/log_mel_stream.h"
#include "mmlearn/audio/voice_activity.h"
#include "mmlearn/core/error.h"
#include "mmlearn/models/whisper_transcribe.h"

namespace mmlearn::search {

namespace fs = std::filesystem;

namespace {

const char* const kProbeText = "a photo of a dog barking at a red car";

std::vector<float> row(const torch::Tensor& embeddings, int64_t i) {
  const auto r = embeddings[i].to(torch::kFloat32).contiguous();
  return {r.data_ptr<float>(), r.data_ptr<float>() + r.numel()};
}

void check_manifest_file(const data::Manifest& manifest) {
  check(manifest.shards.empty(), manifest.path.string(),
        " is a shard set: an index keeps the paths of the files it holds, so give it a manifest file");
}

// A record as an index keeps it: its media paths made absolute (the key of a file is its absolute path).
nlohmann::json stored_record(const data::Manifest& manifest, const data::Record& record) {
  nlohmann::json stored = record.json;
  for (const char* field : {"image", "audio", "video"})
    if (stored.contains(field) && stored[field].is_string())
      stored[field] = fs::absolute(manifest.media_file(record, field)).lexically_normal().string();
  return stored;
}

// Lists a record that cannot be indexed; past --max-bad, an Error.
void skip_record(AddResult& result, const AddOptions& o, const std::string& where, const std::string& why) {
  result.skipped.push_back(str_cat(where, ": ", why));
  if (o.max_bad >= 0 && static_cast<int64_t>(result.skipped.size()) > o.max_bad)
    throw Error(str_cat(result.skipped.size(), " records could not be indexed, more than --max-bad ",
                        o.max_bad, "; the first: ", result.skipped.front()));
}

}  // namespace

std::vector<float> probe_embedding(Model& model) {
  return row(model.embed("text", {kProbeText}, Precision::fp32), 0);
}

std::string default_modality(const Model& model, const data::Manifest& manifest) {
  for (const auto& modality : model.embeds())
    if (modality != "text" && !manifest.records.empty() && manifest.records.front().json.contains(modality))
      return modality;
  return "text";
}

EmbeddingIndex create_index(const fs::path& dir, Model& model, const fs::path& model_path,
                            const std::string& modality, IndexKind kind) {
  const auto embeds = model.embeds();
  if (std::find(embeds.begin(), embeds.end(), modality) == embeds.end())
    throw UsageError(
        str_cat("--modality ", modality, ": the model embeds ", embeds.empty() ? "nothing" : join(embeds)));
  const std::vector<float> probe = probe_embedding(model);
  return EmbeddingIndex::create(dir,
                                {.model = fs::absolute(model_path).lexically_normal().string(),
                                 .model_type = model.family().model_type,
                                 .modality = modality,
                                 .kind = kind,
                                 .dim = static_cast<int64_t>(probe.size())},
                                probe);
}

AddResult add_records(EmbeddingIndex& index, Model& model, const data::Manifest& manifest,
                      const AddOptions& o) {
  check_manifest_file(manifest);
  const std::string modality = index.info().modality;
  AddResult result;
  std::set<std::string> seen;
  struct Pending {
    IndexItem item;  // its key is what is embedded: the file or the text
    std::string where;
  };
  std::vector<Pending> batch;
  auto skip = [&](const std::string& where, const std::string& why) { skip_record(result, o, where, why); };
  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<std::string> inputs;
    for (const auto& p : batch) inputs.push_back(p.item.key);
    std::vector<IndexItem> items;
    std::vector<float> rows;
    try {
      const auto e = model.embed(modality, inputs, o.precision).to(torch::kFloat32).contiguous();
      for (size_t i = 0; i < batch.size(); ++i) items.push_back(batch[i].item);
      rows.assign(e.data_ptr<float>(), e.data_ptr<float>() + e.numel());
    } catch (const Error&) {
      // One bad file fails the batch: embed one by one to find it.
      for (const auto& p : batch) {
        try {
          const auto r = row(model.embed(modality, {p.item.key}, o.precision), 0);
          items.push_back(p.item);
          rows.insert(rows.end(), r.begin(), r.end());
        } catch (const Error& e) {
          skip(p.where, e.what());
        }
      }
    }
    index.add(items, rows.data());
    result.added += static_cast<int64_t>(items.size());
    batch.clear();
  };
  const auto total = static_cast<int64_t>(manifest.records.size());
  for (int64_t i = 0; i < total; ++i) {
    const auto& record = manifest.records[static_cast<size_t>(i)];
    const std::string where = manifest.where(record);
    if (!record.json.contains(modality)) {
      skip(where, str_cat("no \"", modality, "\""));
      continue;
    }
    if (!record.json[modality].is_string()) {
      skip(where, str_cat("\"", modality, "\" is not a string"));
      continue;
    }
    const nlohmann::json stored = stored_record(manifest, record);
    const std::string key = stored[modality].get<std::string>();  // an absolute path, or the text
    if (!seen.insert(key).second || index.contains(key)) {
      ++result.already;
      continue;
    }
    batch.push_back({{key, stored}, where});
    if (static_cast<int64_t>(batch.size()) < o.batch_size) continue;
    flush();
    if (o.progress) o.progress(i + 1, total);
  }
  flush();
  if (o.progress) o.progress(total, total);
  return result;
}

std::vector<float> embed_query(Model& model, const std::string& modality, const std::string& input) {
  return row(model.embed(modality, {input}, Precision::fp32), 0);
}

std::vector<float> compose_query(Model& model, const std::string& image, const std::string& text) {
  return row(model.compose({image}, {text}, Precision::fp32), 0);
}

TranscriptIndex create_transcript_index(const fs::path& dir, Model& model, const fs::path& model_path) {
  if (!model.bundle<WhisperBundle>())
    throw UsageError(str_cat("a ", model.family().model_type,
                             " model neither embeds nor transcribes: an index needs one that does"));
  return TranscriptIndex::create(dir, fs::absolute(model_path).lexically_normal().string(),
                                 model.family().model_type);
}

AddResult add_recordings(TranscriptIndex& index, Model& model, const data::Manifest& manifest,
                         const AddOptions& o) {
  check_manifest_file(manifest);
  WhisperBundle* whisper = model.bundle<WhisperBundle>();
  check(whisper != nullptr, "the model ", index.model(), " does not transcribe");
  const auto& config = whisper->model->config;
  // A window holds n_audio_ctx positions of two 10 ms mel frames each.
  const double window_seconds = static_cast<double>(config.n_audio_ctx) * 2 * 0.01;
  AddResult result;
  const auto total = static_cast<int64_t>(manifest.records.size());
  for (int64_t i = 0; i < total; ++i) {
    const auto& record = manifest.records[static_cast<size_t>(i)];
    const std::string where = manifest.where(record);
    try {
      check(record.json.contains("audio") && record.json["audio"].is_string(), "no \"audio\" file");
      const nlohmann::json stored = stored_record(manifest, record);
      const std::string key = stored["audio"];
      if (index.contains(key)) {
        ++result.already;
      } else {
        const std::vector<float> samples = audio::load_audio(key);
        std::vector<Utterance> utterances;
        for (const auto& span : audio::speech_spans(samples, 16000, {.max_span = window_seconds - 0.5})) {
          const auto begin = static_cast<int64_t>(span.start * 16000),
                     end = static_cast<int64_t>(span.end * 16000);
          auto piece = torch::from_blob(const_cast<float*>(samples.data()) + begin, {end - begin}).clone();
          auto mel = audio::LogMelStream::of_samples(piece, config.n_mels, 2 * config.n_audio_ctx);
          TranscribeOptions options;
          options.condition_on_previous_text = false;
          std::string text = transcribe(*whisper, mel, options).text;
          text.erase(0, text.find_first_not_of(' '));
          if (!text.empty()) utterances.push_back({span.start, span.end, text});
        }
        index.add(key, stored, utterances);
        ++result.added;
      }
    } catch (const Error& e) {
      skip_record(result, o, where, e.what());
    }
    if (o.progress) o.progress(i + 1, total);
  }
  return result;
}

}  // namespace mmlearn::search
