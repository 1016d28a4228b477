// mmlearn's side of the benchmarks: the same work as bench/clip_peer.py does in PyTorch eager, printed as one
// JSON line per measurement so that bench/run.sh can put the two side by side.
//
//   build/bench/mmlearn_bench --bench all --threads 2 --steps 10 --warmup 2
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/precision.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/core/runtime.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/blip.h"
#include "mmlearn/models/captioner.h"
#include "mmlearn/models/clip.h"
#include "mmlearn/models/generator.h"
#include "mmlearn/models/whisper.h"
#include "mmlearn/search/vector_index.h"

using namespace mmlearn;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string impl_name(Precision p) { return p == Precision::fp32 ? "mmlearn" : "mmlearn-bf16"; }

// Runs `step` warmup times untimed, then `steps` times; returns the seconds of the timed part.
template <typename Step>
double time_steps(int warmup, int steps, Step step) {
  for (int i = 0; i < warmup; ++i) step();
  auto start = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Random token ids [B, T] with an end-of-text at a random position and zeros after it, as the peer makes
// them.
torch::Tensor random_ids(int64_t B, const TextConfig& text) {
  auto ids = torch::randint(0, text.eot_token_id, {B, text.context_length}, torch::kLong);
  auto ends = torch::randint(1, text.context_length, {B}, torch::kLong);
  auto positions = torch::arange(text.context_length).unsqueeze(0);
  ids = torch::where(positions > ends.unsqueeze(1), torch::zeros_like(ids), ids);
  return ids.scatter_(1, ends.unsqueeze(1), text.eot_token_id);
}

json bench_train(int64_t batch, int steps, int warmup, Precision precision) {
  ClipConfig config = clip_preset("clip-tiny");
  Clip model(config);
  model->train();
  // The trainer's step (train/trainer.cpp): AdamW, both towers, CLIP's loss, clipping, the temperature clamp.
  torch::optim::AdamW optimizer(
      model->parameters(), torch::optim::AdamWOptions(1e-3).betas({0.9, 0.98}).eps(1e-6).weight_decay(0.1));
  auto images = torch::randint(0, 256, {batch, 3, 64, 64}, torch::kUInt8);
  auto ids = random_ids(batch, config.text);
  double loss = 0;
  double s = time_steps(warmup, steps, [&] {
    torch::Tensor image_embeds, text_embeds;
    {
      AutocastGuard autocast(precision);
      image_embeds = model->encode_image(model->normalize_pixels(images));
      text_embeds = model->encode_text(ids);
    }
    auto l = clip_loss(image_embeds, text_embeds, model->logit_scale);
    optimizer.zero_grad();
    l.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    optimizer.step();
    torch::NoGradGuard no_grad;
    model->logit_scale.clamp_(0, std::log(kMaxLogitScale));
    loss = l.item<double>();
  });
  return {{"bench", "train_clip_tiny"},
          {"impl", impl_name(precision)},
          {"samples_per_s", steps * batch / s},
          {"batch_size", batch},
          {"steps", steps},
          {"seconds", s},
          {"final_loss", loss}};
}

json bench_embed(int64_t batch, int steps, int warmup, Precision precision) {
  ClipConfig config = clip_preset("clip-vit-b-32");
  Clip model(config);
  model->eval();
  auto pixels = torch::randn({batch, 3, 224, 224});
  c10::InferenceMode inference;
  AutocastGuard autocast(precision);
  double s = time_steps(warmup, steps, [&] { model->encode_image(pixels); });
  return {{"bench", "embed_clip_vit_b_32"},
          {"impl", impl_name(precision)},
          {"images_per_s", steps * batch / s},
          {"batch_size", batch},
          {"steps", steps},
          {"seconds", s},
          {"embed_dim", config.embed_dim}};
}

// Whisper's features of one 30 s window (random audio), as transcription computes them.
json bench_logmel(int steps, int warmup) {
  auto audio = torch::randn({audio::whisper::chunk_samples}) * 0.1;
  double s = time_steps(warmup, steps, [&] { audio::log_mel_spectrogram(audio, 80); });
  return {{"bench", "logmel_30s"},
          {"impl", "mmlearn"},
          {"windows_per_s", steps / s},
          {"steps", steps},
          {"seconds", s}};
}

// The encoder of whisper-base (random weights) on one 30 s window of features.
json bench_whisper_encoder(int steps, int warmup) {
  Whisper model(whisper_preset("whisper-base"));
  model->eval();
  auto mel = torch::randn({1, 80, audio::whisper::chunk_frames});
  c10::InferenceMode inference;
  double s = time_steps(warmup, steps, [&] { model->encoder->forward(mel); });
  return {{"bench", "whisper_base_encoder_30s"},
          {"impl", "mmlearn"},
          {"windows_per_s", steps / s},
          {"steps", steps},
          {"seconds", s}};
}

// Captions from a BLIP-base-sized captioner (ViT-B/16 at 384 px, a 12-layer BERT decoder; random weights):
// the image tokens, then greedy decoding over the KV cache, `tokens` tokens a caption (no early end).
json bench_blip_caption(int steps, int warmup, int64_t tokens, Precision precision) {
  BlipConfig config;
  config.text.heads = 12;  // Salesforce/blip-image-captioning-base
  Blip model(config);
  model->eval();
  auto pixels = torch::randn({1, 3, config.vision.image_size, config.vision.image_size});
  const auto start = torch::full({1, 1}, config.text.bos_token_id, torch::kLong);
  c10::InferenceMode inference;
  AutocastGuard autocast(precision);
  double s = time_steps(warmup, steps, [&] {
    const auto image = model->vision->forward(pixels);
    generate(
        [&](const torch::Tensor& t, KVCache& cache) {
          const auto memory = cache.empty() ? image : torch::Tensor();
          return model->text_decoder->logits(
              model->text_decoder->forward(t, /*causal=*/true, memory, &cache));
        },
        start, /*eos=*/-1, {}, {.max_new_tokens = tokens});
  });
  return {{"bench", "caption_blip_base"},
          {"impl", impl_name(precision)},
          {"samples_per_s", steps / s},
          {"tokens", tokens},
          {"steps", steps},
          {"seconds", s}};
}

// Captions from the `captioner-tiny` preset (random weights): a batch of 16 images of 64 px through the
// ResNet tower and the cross-attention connector, then greedy decoding over the KV cache, `tokens` tokens a
// caption (no early end).
json bench_captioner_caption(int steps, int warmup, int64_t tokens, Precision precision) {
  Clip clip(clip_preset("clip-tiny"));
  Captioner captioner(captioner_config(clip, 1024, {}));
  clip->eval();
  captioner->eval();
  const int64_t B = 16, S = clip->config.vision.image_size;
  auto pixels = torch::randn({B, 3, S, S});
  const auto start = torch::zeros({B, 1}, torch::kLong);
  c10::InferenceMode inference;
  AutocastGuard autocast(precision);
  double s = time_steps(warmup, steps, [&] {
    const Conditioning conditioning = captioner->connector->forward(clip->resnet->forward(pixels).tokens);
    generate(
        [&](const torch::Tensor& t, KVCache& cache) {
          return captioner->decoder->forward(t, cache.empty() ? conditioning : Conditioning{}, &cache);
        },
        start, /*eos=*/-1, {}, {.max_new_tokens = tokens});
  });
  return {{"bench", "caption_captioner_tiny"},
          {"impl", impl_name(precision)},
          {"samples_per_s", steps * B / s},
          {"batch_size", B},
          {"tokens", tokens},
          {"steps", steps},
          {"seconds", s}};
}

// generator-tiny's UNet (bench/unet_peer.py runs the same): 16 x 16 x 4 latents, 32 text tokens of width 128,
// a batch of 32. "sample": one denoising step of 16 images under classifier-free guidance, inference mode;
// "train": forward, MSE to the noise, backward, clipping, AdamW. samples_per_s counts latents.
json bench_unet(bool training, int steps, int warmup, Precision precision) {
  torch::manual_seed(0);
  UNet unet(generator_preset("generator-tiny", 128, 64).unet);
  const int64_t B = 32;
  const auto x = torch::randn({B, 4, 16, 16}), context = torch::randn({B, 32, 128}),
             noise = torch::randn_like(x);
  const auto t = torch::randint(0, 1000, {B}, torch::kLong);
  torch::optim::AdamW optimizer(unet->parameters(), torch::optim::AdamWOptions(2e-4).weight_decay(0.01));
  double s = 0;
  if (training) {
    unet->train();
    s = time_steps(warmup, steps, [&] {
      optimizer.zero_grad();
      torch::Tensor out;
      {
        AutocastGuard autocast(precision);
        out = unet->forward(x, t, context);
      }
      torch::mse_loss(out.to(torch::kFloat), noise).backward();
      torch::nn::utils::clip_grad_norm_(unet->parameters(), 1.0);
      optimizer.step();
    });
  } else {
    unet->eval();
    c10::InferenceMode inference;
    AutocastGuard autocast(precision);
    s = time_steps(warmup, steps, [&] { unet->forward(x, t, context); });
  }
  return {{"bench", training ? "unet_generator_tiny_train" : "unet_generator_tiny_sample"},
          {"impl", impl_name(precision)},
          {"samples_per_s", steps * B / s},
          {"batch_size", B},
          {"steps", steps},
          {"seconds", s}};
}

json bench_shapes(int64_t records) {
  auto dir = std::filesystem::temp_directory_path() / "mmlearn-bench-shapes";
  std::filesystem::remove_all(dir);
  auto summary = data::generate_shapes(dir, {.n_train = records, .n_test = 0, .seed = 0});
  std::filesystem::remove_all(dir);
  return {{"bench", "data_shapes"},
          {"impl", "mmlearn"},
          {"records_per_s", summary.records / summary.seconds},
          {"records", summary.records},
          {"seconds", summary.seconds}};
}

}  // namespace

// Nearest-neighbour search over n unit vectors: for each index kind the time to build it, queries/s (all
// queries in one batch) and recall@10 against the exact (flat) answers. "random" vectors have no clusters,
// the hardest case for the approximate kinds; "clustered" ones lie around n / 100 centres, as learned
// embeddings gather around what they depict (each a centre plus noise of the same norm spread over every
// dimension).
void bench_search(int64_t n, int64_t dim, int64_t n_queries, const std::string& data,
                  const std::vector<std::string>& kinds, const std::function<void(json)>& emit) {
  using namespace mmlearn::search;
  auto normalize = [](const torch::Tensor& x) { return (x / x.norm(2, 1, true)).contiguous(); };
  const auto centres = normalize(torch::randn({std::max<int64_t>(n / 100, 1), dim}));
  auto draw = [&](int64_t rows) {
    if (data == "random") return normalize(torch::randn({rows, dim}));
    const auto which = torch::randint(centres.size(0), {rows});
    return normalize(centres.index_select(0, which) + torch::randn({rows, dim}) / std::sqrt(double(dim)));
  };
  const auto vectors = draw(n), queries = draw(n_queries);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i;
  std::vector<std::vector<Hit>> exact;
  for (const std::string& name : kinds) {
    const IndexKind kind = parse_index_kind(name);
    VectorIndex index(kind, dim);
    auto start = Clock::now();
    index.add(ids, vectors.data_ptr<float>());
    const double build = std::chrono::duration<double>(Clock::now() - start).count();
    start = Clock::now();
    const auto hits = index.search(queries.data_ptr<float>(), n_queries, 10);
    const double search = std::chrono::duration<double>(Clock::now() - start).count();
    if (kind == IndexKind::flat) exact = hits;
    if (exact.empty())
      throw std::runtime_error("--kinds must start with flat: recall is measured against it");
    double found = 0;
    for (size_t q = 0; q < hits.size(); ++q)
      for (const auto& h : hits[q])
        for (const auto& e : exact[q]) found += h.id == e.id;
    emit({{"bench", "search"},
          {"kind", index_kind_name(kind)},
          {"data", data},
          {"vectors", n},
          {"dim", dim},
          {"queries", n_queries},
          {"build_seconds", build},
          {"queries_per_s", double(n_queries) / search},
          {"recall_at_10", found / (10.0 * double(n_queries))}});
  }
}

int main(int argc, char** argv) {
  CLI::App app{"mmlearn benchmarks (JSON lines on stdout); bench/run.sh compares them with PyTorch eager"};
  std::string which = "all";
  int threads = 0, steps = 10, warmup = 2;
  int64_t batch = 0, records = 5000, vectors = 100000, dim = 512, queries = 1000;
  app.add_option(
         "--bench", which,
         "train | embed | shapes | logmel | encoder | caption | unet | search | models (train, embed, "
         "logmel, encoder, caption, unet) | all")
      ->check(CLI::IsMember(
          {"train", "embed", "shapes", "logmel", "encoder", "caption", "unet", "search", "models", "all"}));
  app.add_option("--threads", threads, "intra-op threads (0: all cores)");
  app.add_option("--steps", steps, "timed steps");
  app.add_option("--warmup", warmup, "untimed steps first");
  app.add_option("--batch-size", batch, "batch (default 128 for train, 16 for embed)");
  app.add_option("--records", records, "records for the shapes generator");
  app.add_option("--vectors", vectors, "search: vectors indexed");
  app.add_option("--dim", dim, "search: their dimension");
  app.add_option("--queries", queries, "search: queries, answered in one batch");
  std::string search_data = "clustered";
  std::vector<std::string> kinds = {"flat", "hnsw", "ivf", "ivfpq"};
  app.add_option("--data", search_data, "search: clustered (around n / 100 centres) or random unit vectors")
      ->check(CLI::IsMember({"clustered", "random"}));
  app.add_option("--kinds", kinds, "search: index kinds to measure, flat first")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  init_runtime(threads);
  Progress::set_enabled(false);
  torch::manual_seed(0);
  auto emit = [&](json j) {
    j["threads"] = torch::get_num_threads();
    std::cout << j.dump() << std::endl;
  };
  const bool models = which == "models" || which == "all";
  if (which == "shapes" || which == "all") emit(bench_shapes(records));
  if (which == "search") bench_search(vectors, dim, queries, search_data, kinds, emit);
  if (which == "logmel" || models) emit(bench_logmel(std::max(steps * 20, 200), warmup));
  if (which == "encoder" || models) emit(bench_whisper_encoder(steps, warmup));
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    if (p == Precision::bf16 && !cpu_has_native_bf16()) continue;
    if (which == "train" || models) emit(bench_train(batch ? batch : 128, steps, warmup, p));
    if (which == "embed" || models) emit(bench_embed(batch ? batch : 16, steps, warmup, p));
    if (which == "caption" || models) {
      emit(bench_captioner_caption(steps, warmup, 20, p));
      emit(bench_blip_caption(std::max(steps / 2, 1), 1, 20, p));
    }
    if (which == "unet" || models) {
      emit(bench_unet(false, steps, warmup, p));
      emit(bench_unet(true, steps, warmup, p));
    }
  }
  return 0;
}
