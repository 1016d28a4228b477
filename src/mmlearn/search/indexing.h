// Filling an index from a manifest with any model that embeds (the registry's Model::embed), and embedding
// queries for it.
//
//   auto model = mmlearn::open_model("clip-run");
//   auto idx = mmlearn::search::create_index("idx", *model, "clip-run", "image", IndexKind::flat);
//   mmlearn::search::add_records(idx, *model, mmlearn::data::read_manifest("shapes/test.jsonl"), {});
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "mmlearn/core/precision.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/search/embedding_index.h"
#include "mmlearn/search/transcript_index.h"

namespace mmlearn::search {

// The model's embedding of a fixed text, in fp32: it tells whether two models embed alike.
std::vector<float> probe_embedding(Model& model);

// What an index of `model` holds when the user does not say: the first non-text modality it embeds that the
// manifest's first record has, else "text".
std::string default_modality(const Model& model, const data::Manifest& manifest);

// A new index in `dir` for items of `modality` embedded by `model` (opened from `model_path`).
EmbeddingIndex create_index(const std::filesystem::path& dir, Model& model,
                            const std::filesystem::path& model_path, const std::string& modality,
                            IndexKind kind);

struct AddOptions {
  int64_t batch_size = 64;  // records embedded and committed together
  Precision precision = Precision::fp32;
  int64_t max_bad = -1;  // records that cannot be embedded, skipped and listed; more is an Error (-1: any)
  std::function<void(int64_t done, int64_t total)> progress;
};

struct AddResult {
  int64_t added = 0, already = 0;    // already: held before (an interrupted build continues where it stopped)
  std::vector<std::string> skipped;  // "file:line: why"
};

// Embeds the records of `manifest` the index does not hold yet (its key: the media file's absolute path, or
// the text), a batch per transaction. A record without the index's modality, or whose file does not decode,
// is skipped and listed.
AddResult add_records(EmbeddingIndex& index, Model& model, const data::Manifest& manifest,
                      const AddOptions& options);

// A new spoken-word index in `dir` of recordings transcribed by `model` (a speech recognizer).
TranscriptIndex create_transcript_index(const std::filesystem::path& dir, Model& model,
                                        const std::filesystem::path& model_path);

// Transcribes the "audio" of the records the index does not hold yet, utterance by utterance (cut at pauses,
// each within one of the recognizer's windows), and adds each recording in one transaction. batch_size and
// precision do not apply.
AddResult add_recordings(TranscriptIndex& index, Model& model, const data::Manifest& manifest,
                         const AddOptions& options);

// A query's embedding ([dim]) from text, an image file or an audio file, as the index's model makes it.
std::vector<float> embed_query(Model& model, const std::string& modality, const std::string& input);
// A composed query: the image changed as the text says (Model::compose: a composed model's combiner, else
// the arithmetic baseline).
std::vector<float> compose_query(Model& model, const std::string& image, const std::string& text);

}  // namespace mmlearn::search
