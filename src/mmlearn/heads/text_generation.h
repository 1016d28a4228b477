// Writing text with a decoder one token at a time, over a key/value cache: greedy, beam search (scores
// length-normalized) and sampling (temperature, top-k, top-p), with a guard against repeated n-grams and a
// length limit, for a batch of prompts at once. The decoder is a function, so any model that conditions a
// TextDecoder (captioner, question answering) generates through this one loop.
//
//   mmlearn::GenerationOptions o{.max_new_tokens = 24, .beam = 3};
//   auto out = mmlearn::generate(step, prompts, eos, {pad}, o);   // prompts [B, T] -> B results
//   out[0].tokens;                                               // without the prompt and EOS
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "mmlearn/blocks/decoder_block.h"

namespace mmlearn {

struct GenerationOptions {
  int64_t max_new_tokens = 32;  // tokens written at most, EOS included
  int64_t beam = 1;             // hypotheses kept per prompt; 1: greedy, or sampling
  double length_penalty = 1.0;  // beam search ranks log-probability / length^length_penalty
  double temperature = 0.0;     // > 0: sample (with beam 1); 0: the likeliest token
  int64_t top_k = 0;            // sampling: only from the k likeliest tokens (0: all)
  double top_p = 1.0;           // sampling: only from the fewest likeliest tokens holding this probability
  int64_t no_repeat_ngram = 0;  // never write an n-gram of this length twice (0: no guard)
  uint64_t seed = 0;            // sampling's generator
};
// A UsageError naming the flag (--beam, --temperature, --top-k, --top-p, --max-tokens, --no-repeat-ngram)
// for a value out of range or a combination that means nothing (sampling with a beam).
void check_generation_options(const GenerationOptions& options);

struct GeneratedText {
  std::vector<int64_t> tokens;  // written after the prompt, EOS left out
  double logprob = 0;           // their total log-probability (EOS included when written)
  double score = 0;             // what beam search ranked: logprob / length^length_penalty
  bool finished = false;        // ended with EOS, rather than at max_new_tokens
};

// The decoder: logits [B, T, V] of `tokens` [B, T] following what `cache` holds (all of the prompt on the
// first call, with an empty cache, and one token a row after). Generation reorders the cache's rows
// (KVCache::select) as hypotheses are kept, repeated and dropped.
using DecoderStep = std::function<torch::Tensor(const torch::Tensor& tokens, KVCache& cache)>;

// Continues every prompt of `prompts` [B, T] (int64) until `eos` or max_new_tokens. `suppress`: tokens
// never written (padding, the start token).
std::vector<GeneratedText> generate(const DecoderStep& step, const torch::Tensor& prompts, int64_t eos,
                                    const std::vector<int64_t>& suppress, const GenerationOptions& options);

}  // namespace mmlearn
