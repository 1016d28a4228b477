// Evaluating and using an audio–text model (models/clap.h): embeddings of clips and texts, and audio↔text
// retrieval recall@K on held-out records.
//
//   auto metrics = mmlearn::evaluate_clap(clap, dataset);  // {"retrieval": {"audio_to_text",
//   "text_to_audio"}}
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/data/audio_text_dataset.h"
#include "mmlearn/models/clap.h"

namespace mmlearn {

// L2-normalized embeddings [N, E] of clips and of texts, in batches, without autograd.
torch::Tensor embed_audio_clips(ClapBundle& clap, const std::vector<const data::AudioClip*>& clips);
torch::Tensor embed_clap_texts(ClapBundle& clap, const std::vector<std::string>& texts);

// Log-mel features, lengths and token ids of a batch of clips, as training and embedding make them.
struct ClapBatch {
  torch::Tensor mel, samples, ids;
};
ClapBatch make_clap_batch(const ClapBundle& clap, const std::vector<const data::AudioClip*>& clips);

// Audio↔text recall@1/5/10 over the clips (a candidate counts when its text equals the query's own).
nlohmann::json evaluate_clap(ClapBundle& clap, const data::AudioTextDataset& ds);

}  // namespace mmlearn
