// The text decoder, its connectors and generation: cached decoding equals decoding from scratch, beam search
// wide enough to keep every prefix equals exhaustive search, sampling's knobs behave, and a decoder learns to
// say which of two sounds it hears through the Whisper encoder (nothing in it is image-specific).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <set>

#include "../test_util.h"
#include "mmlearn/audio/log_mel.h"
#include "mmlearn/audio/whisper_encoder.h"
#include "mmlearn/heads/connector.h"
#include "mmlearn/heads/text_decoder.h"
#include "mmlearn/heads/text_generation.h"

namespace mmlearn {
namespace {

constexpr int64_t kVocab = 5, kEos = 4, kWidth = 16, kEncoderWidth = 12, kEncoderTokens = 3;

struct Tiny {
  Connector connector{nullptr};
  TextDecoder decoder{nullptr};
  torch::Tensor encoded;  // [B, N, encoder width]
};

Tiny tiny(ConnectorKind kind, int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  Tiny t;
  t.connector = Connector(ConnectorConfig{.kind = kind,
                                          .encoder_width = kEncoderWidth,
                                          .width = kWidth,
                                          .queries = 2,
                                          .query_layers = 1,
                                          .heads = 2});
  t.decoder = TextDecoder(TextDecoderConfig{.vocab_size = kVocab,
                                            .context = 16,
                                            .width = kWidth,
                                            .layers = 2,
                                            .heads = 2,
                                            .cross_attention = kind == ConnectorKind::cross_attention});
  // Logits spread about as a trained model's (the initialization's are nearly flat), where greedy and narrow
  // beams can miss the best text.
  torch::NoGradGuard no_grad;
  t.decoder->token_embedding->weight.normal_(0, 0.3);
  t.encoded = torch::randn({batch, kEncoderTokens, kEncoderWidth});
  t.connector->eval();
  t.decoder->eval();
  return t;
}

DecoderStep cached_step(Tiny& t) {
  return [&t](const torch::Tensor& tokens, KVCache& cache) {
    return t.decoder->forward(tokens, cache.empty() ? t.connector->forward(t.encoded) : Conditioning{},
                              &cache);
  };
}

// log P(tokens | prompt) of one example, from one forward pass without a cache.
double sequence_logprob(Tiny& t, int64_t b, const std::vector<int64_t>& prompt,
                        const std::vector<int64_t>& tokens) {
  std::vector<int64_t> all = prompt;
  all.insert(all.end(), tokens.begin(), tokens.end());
  const auto c = t.connector->forward(t.encoded.narrow(0, b, 1));
  const auto logp = torch::log_softmax(t.decoder->forward(torch::tensor(all).unsqueeze(0), c), -1)[0];
  double sum = 0;
  for (size_t i = 0; i < tokens.size(); ++i)
    sum += logp[static_cast<int64_t>(prompt.size() + i) - 1][tokens[i]].item<double>();
  return sum;
}

TEST(TextDecoder, CachedStepsGiveTheLogitsOfOneFullPassForEveryConnector) {
  torch::NoGradGuard no_grad;
  for (auto kind : {ConnectorKind::cross_attention, ConnectorKind::prefix, ConnectorKind::queries}) {
    auto t = tiny(kind, 2, 1);
    const auto tokens = torch::randint(kVocab, {2, 6});
    const auto c = t.connector->forward(t.encoded);
    const auto full = t.decoder->forward(tokens, c);
    KVCache cache;
    std::vector<torch::Tensor> steps = {t.decoder->forward(tokens.narrow(1, 0, 2), c, &cache)};
    for (int64_t i = 2; i < 6; ++i) steps.push_back(t.decoder->forward(tokens.narrow(1, i, 1), {}, &cache));
    EXPECT_LT((torch::cat(steps, 1) - full).abs().max().item<double>(), 1e-5) << connector_name(kind);
    EXPECT_EQ(cache.length, 6 + t.connector->prefix_length(kEncoderTokens)) << connector_name(kind);
  }
}

TEST(TextGeneration, GreedyWithTheCacheWritesWhatGreedyFromScratchWrites) {
  torch::NoGradGuard no_grad;
  for (auto kind : {ConnectorKind::cross_attention, ConnectorKind::prefix, ConnectorKind::queries}) {
    auto t = tiny(kind, 3, 2);
    const auto prompts = torch::full({3, 1}, int64_t{0});
    const auto got = generate(cached_step(t), prompts, kEos, {}, {.max_new_tokens = 8});
    for (int64_t b = 0; b < 3; ++b) {
      std::vector<int64_t> written;
      const auto c = t.connector->forward(t.encoded.narrow(0, b, 1));
      for (int64_t i = 0; i < 8; ++i) {
        std::vector<int64_t> all = {0};
        all.insert(all.end(), written.begin(), written.end());
        const int64_t next =
            t.decoder->forward(torch::tensor(all).unsqueeze(0), c)[0][-1].argmax().item<int64_t>();
        if (next == kEos) break;
        written.push_back(next);
      }
      const auto& g = got[static_cast<size_t>(b)];
      EXPECT_EQ(g.tokens, written) << connector_name(kind) << " example " << b;
      auto scored = written;
      if (g.finished) scored.push_back(kEos);
      EXPECT_NEAR(g.logprob, sequence_logprob(t, b, {0}, scored), 1e-4);
    }
  }
}

// Every text of at most `length` tokens (ending with EOS, or not ended at the limit), with its score.
GeneratedText exhaustive_best(Tiny& t, int64_t b, int64_t length, double penalty) {
  GeneratedText best;
  best.score = -std::numeric_limits<double>::infinity();
  std::function<void(std::vector<int64_t>)> visit = [&](std::vector<int64_t> prefix) {
    for (int64_t token = 0; token < kVocab; ++token) {
      auto tokens = prefix;
      tokens.push_back(token);
      const bool ended = token == kEos;
      if (!ended && static_cast<int64_t>(tokens.size()) < length) {
        visit(tokens);
        continue;
      }
      const double logprob = sequence_logprob(t, b, {0}, tokens);
      const double score = logprob / std::pow(static_cast<double>(tokens.size()), penalty);
      if (ended) tokens.pop_back();
      if (score > best.score) best = {tokens, logprob, score, ended};
    }
  };
  visit({});
  return best;
}

TEST(TextGeneration, BeamSearchKeepingEveryPrefixEqualsExhaustiveSearch) {
  torch::NoGradGuard no_grad;
  // A beam of W >= V^(L-1) keeps every unfinished prefix up to the last step, where the best text ranks
  // first: beam search is then exhaustive. A beam as wide as the vocabulary over two tokens, and V^2 over
  // three, for each length penalty (none, the usual 1, a strong 2, and a negative one that favours short).
  // A narrow beam of 2 misses the best text somewhere among these cases: the equality is not a given.
  const int64_t B = 8;
  int narrow_misses = 0;
  for (const auto& [length, beam] : {std::pair<int64_t, int64_t>{2, kVocab}, {3, kVocab * kVocab}})
    for (double penalty : {0.0, 1.0, 2.0, -1.0}) {
      auto t = tiny(ConnectorKind::cross_attention, B, 3);
      auto search = [&](int64_t width) {
        return generate(cached_step(t), torch::zeros({B, 1}, torch::kInt64), kEos, {},
                        {.max_new_tokens = length, .beam = width, .length_penalty = penalty});
      };
      const auto got = search(beam), narrow = search(2);
      for (int64_t b = 0; b < B; ++b) {
        const auto want = exhaustive_best(t, b, length, penalty);
        const auto& g = got[static_cast<size_t>(b)];
        EXPECT_EQ(g.tokens, want.tokens) << "length " << length << " penalty " << penalty << " example " << b;
        EXPECT_EQ(g.finished, want.finished);
        EXPECT_NEAR(g.score, want.score, 1e-5);
        narrow_misses += narrow[static_cast<size_t>(b)].score < want.score - 1e-6;
      }
    }
  EXPECT_GT(narrow_misses, 0);
}

TEST(TextGeneration, SamplingIsSeededAndItsNarrowestSettingsAreGreedy) {
  torch::NoGradGuard no_grad;
  auto t = tiny(ConnectorKind::prefix, 4, 4);
  const auto prompts = torch::zeros({4, 1}, torch::kInt64);
  auto run = [&](GenerationOptions o) {
    std::vector<std::vector<int64_t>> out;
    for (const auto& g : generate(cached_step(t), prompts, kEos, {}, o)) out.push_back(g.tokens);
    return out;
  };
  const auto greedy = run({.max_new_tokens = 10});
  EXPECT_EQ(run({.max_new_tokens = 10, .temperature = 1.0, .top_k = 1}), greedy);
  EXPECT_EQ(run({.max_new_tokens = 10, .temperature = 1.0, .top_p = 1e-6}), greedy);
  EXPECT_EQ(run({.max_new_tokens = 10, .temperature = 1.0, .seed = 7}),
            run({.max_new_tokens = 10, .temperature = 1.0, .seed = 7}));
  // At a high temperature, different seeds write different texts (over 4 examples of 10 tokens).
  std::set<std::vector<std::vector<int64_t>>> seen;
  for (uint64_t seed = 0; seed < 4; ++seed)
    seen.insert(run({.max_new_tokens = 10, .temperature = 5.0, .seed = seed}));
  EXPECT_GT(seen.size(), 1u);
}

TEST(TextGeneration, GuardsAgainstRepeatsAndSuppressedTokens) {
  torch::NoGradGuard no_grad;
  auto t = tiny(ConnectorKind::queries, 3, 5);
  const auto prompts = torch::zeros({3, 1}, torch::kInt64);
  // No token twice (n = 1), the prompt's included: at most the V - 2 tokens that are neither 0 nor EOS.
  for (const auto& g :
       generate(cached_step(t), prompts, kEos, {}, {.max_new_tokens = 10, .no_repeat_ngram = 1})) {
    std::set<int64_t> distinct(g.tokens.begin(), g.tokens.end());
    EXPECT_EQ(distinct.size(), g.tokens.size());
    EXPECT_EQ(distinct.count(0), 0u);
  }
  for (int64_t beam : {1, 3})
    for (const auto& g : generate(cached_step(t), prompts, kEos, {1, 2},
                                  {.max_new_tokens = 6, .beam = beam, .no_repeat_ngram = 2}))
      for (int64_t token : g.tokens) EXPECT_TRUE(token == 0 || token == 3) << "beam " << beam;
}

TEST(TextGeneration, NonsenseOptionsAreUsageErrorsNamingTheFlag) {
  auto message = [](GenerationOptions o) { return test::error_of([&] { check_generation_options(o); }); };
  EXPECT_NE(message({.beam = 0}).find("--beam"), std::string::npos);
  EXPECT_NE(message({.max_new_tokens = 0}).find("--max-tokens"), std::string::npos);
  EXPECT_NE(message({.beam = 3, .temperature = 1}).find("--temperature"), std::string::npos);
  EXPECT_NE(message({.top_k = 5}).find("--top-k"), std::string::npos);
  EXPECT_NE(message({.temperature = 1, .top_p = 0}).find("--top-p"), std::string::npos);
  EXPECT_NE(message({.temperature = -1}).find("--temperature"), std::string::npos);
  EXPECT_NE(message({.no_repeat_ngram = -1}).find("--no-repeat-ngram"), std::string::npos);
  EXPECT_EQ(message({}), "(no error)");
}

// Two tones, 440 Hz and 1,760 Hz, through the Whisper encoder: for each connector, a decoder trained a few
// hundred steps names the one it hears.
TEST(TextGeneration, ADecoderOnTheWhisperEncoderSaysWhichSoundItHears) {
  torch::manual_seed(0);
  const int64_t frames = 100;  // 1 s of mel frames; 50 encoder positions
  auto tone = [&](double hz) {
    const auto t = torch::arange(16000, torch::kFloat) / 16000.0;
    return audio::log_mel_spectrogram(0.5 * torch::sin(2 * M_PI * hz * t), 80).narrow(1, 0, frames);
  };
  const auto mel = torch::stack({tone(440), tone(1760)});
  // Texts over a vocabulary of 8: 0 starts, 7 ends.
  const std::vector<std::vector<int64_t>> texts = {{1, 2, 3}, {4, 5, 6, 2}};
  const int64_t eos = 7;
  for (auto kind : {ConnectorKind::cross_attention, ConnectorKind::prefix, ConnectorKind::queries}) {
    torch::manual_seed(1);
    WhisperEncoder encoder(
        WhisperEncoderConfig{.n_mels = 80, .n_ctx = frames / 2, .n_state = 32, .n_head = 2, .n_layer = 1});
    Connector connector(ConnectorConfig{
        .kind = kind, .encoder_width = 32, .width = 32, .queries = 4, .query_layers = 1, .heads = 2});
    TextDecoder decoder(TextDecoderConfig{.vocab_size = 8,
                                          .context = 64,
                                          .width = 32,
                                          .layers = 1,
                                          .heads = 2,
                                          .cross_attention = connector->uses_cross_attention()});
    std::vector<torch::Tensor> params = encoder->parameters();
    for (const auto& p : connector->parameters()) params.push_back(p);
    for (const auto& p : decoder->parameters()) params.push_back(p);
    torch::optim::Adam adam(params, torch::optim::AdamOptions(3e-3));
    // Teacher forcing: inputs 0 + text, targets text + EOS, padded with EOS and ignored there.
    const auto inputs = torch::tensor({0, 1, 2, 3, 7, 0, 4, 5, 6, 2}).view({2, 5});
    const auto targets = torch::tensor({1, 2, 3, 7, -100, 4, 5, 6, 2, 7}).view({2, 5});
    for (int step = 0; step < 150; ++step) {
      const auto logits = decoder->forward(inputs, connector->forward(encoder->forward(mel)));
      const auto loss = torch::nn::functional::cross_entropy(
          logits.reshape({-1, 8}), targets.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
      adam.zero_grad();
      loss.backward();
      adam.step();
    }
    torch::NoGradGuard no_grad;
    const auto encoded = encoder->forward(mel);
    const auto out = generate(
        [&](const torch::Tensor& tokens, KVCache& cache) {
          return decoder->forward(tokens, cache.empty() ? connector->forward(encoded) : Conditioning{},
                                  &cache);
        },
        torch::zeros({2, 1}, torch::kInt64), eos, {0}, {.max_new_tokens = 8, .beam = 2});
    EXPECT_EQ(out[0].tokens, texts[0]) << connector_name(kind);
    EXPECT_EQ(out[1].tokens, texts[1]) << connector_name(kind);
  }
}

}  // namespace
}  // namespace mmlearn
