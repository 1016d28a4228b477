#include "mmlearn/eval/clap_eval.h"

#include <torch/torch.h>

#include "mmlearn/core/error.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/models/clip_pretrained.h"

namespace mmlearn {
using data::AudioClip;
using nlohmann::json;

ClapBatch make_clap_batch(const ClapBundle& clap, const std::vector<const AudioClip*>& clips) {
  const auto& c = clap.model->config;
  std::vector<int64_t> samples;
  std::vector<std::string> texts;
  for (const AudioClip* clip : clips) {
    samples.push_back(static_cast<int64_t>(clip->samples.size()));
    texts.push_back(clip->text);
  }
  return {data::log_mel_batch(clips, c.audio.n_mels, 2 * c.audio.n_ctx), torch::tensor(samples),
          tokenize_batch(clap.tokenizer, texts, c.text.context_length)};
}

torch::Tensor embed_audio_clips(ClapBundle& clap, const std::vector<const AudioClip*>& clips) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (size_t start = 0; start < clips.size(); start += 64) {
    const std::vector<const AudioClip*> batch(
        clips.begin() + static_cast<std::ptrdiff_t>(start),
        clips.begin() + static_cast<std::ptrdiff_t>(std::min(clips.size(), start + 64)));
    const ClapBatch b = make_clap_batch(clap, batch);
    out.push_back(clap.model->encode_audio(b.mel, b.samples));
  }
  return torch::cat(out);
}

torch::Tensor embed_clap_texts(ClapBundle& clap, const std::vector<std::string>& texts) {
  torch::NoGradGuard no_grad;
  return clap.model->encode_text(
      tokenize_batch(clap.tokenizer, texts, clap.model->config.text.context_length));
}

json evaluate_clap(ClapBundle& clap, const data::AudioTextDataset& ds) {
  check(!ds.clips.empty(), "audio–text evaluation: no usable records");
  std::vector<const AudioClip*> clips;
  std::vector<std::string> texts;
  for (const auto& c : ds.clips) {
    clips.push_back(&c);
    texts.push_back(c.text);
  }
  return {{"retrieval", retrieval_metrics(embed_audio_clips(clap, clips), embed_clap_texts(clap, texts),
                                          texts, {1, 5, 10}, {"audio_to_text", "text_to_audio"})}};
}

}  // namespace mmlearn
