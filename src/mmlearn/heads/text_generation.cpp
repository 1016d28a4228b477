#include "mmlearn/heads/text_generation.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "mmlearn/core/error.h"

namespace mmlearn {

namespace {

constexpr double kNever = -std::numeric_limits<double>::infinity();

// Sets to -inf, in each row's log-probabilities [R, V], the suppressed tokens and every token that would
// repeat an n-gram the row (its prompt and what it wrote) already holds (Hugging Face's
// no_repeat_ngram_size).
void ban_tokens(torch::Tensor& logp, const std::vector<std::vector<int64_t>>& rows,
                const std::vector<int64_t>& suppress, int64_t n) {
  const float never = -std::numeric_limits<float>::infinity();
  for (int64_t token : suppress) logp.select(1, token).fill_(never);
  if (n <= 0) return;
  auto a = logp.accessor<float, 2>();
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& h = rows[r];
    const auto len = static_cast<int64_t>(h.size());
    if (len < n) continue;
    // The last n - 1 tokens, wherever they occurred before, may not be followed by what followed them then.
    for (int64_t i = 0; i + n <= len; ++i)
      if (std::equal(h.begin() + i, h.begin() + i + n - 1, h.end() - (n - 1)))
        a[static_cast<int64_t>(r)][h[static_cast<size_t>(i + n - 1)]] = never;
  }
}

// Sampling's choice from processed logits [R, V]: temperature, then top-k, then top-p (Hugging Face's order).
torch::Tensor sample(torch::Tensor logits, const GenerationOptions& o, torch::Generator& generator) {
  const float never = -std::numeric_limits<float>::infinity();
  logits = logits / o.temperature;
  if (o.top_k > 0 && o.top_k < logits.size(1)) {
    const auto kth = std::get<0>(logits.topk(o.top_k, 1)).select(1, -1).unsqueeze(1);
    logits = logits.masked_fill(logits < kth, never);
  }
  if (o.top_p < 1.0) {
    auto [sorted, order] = logits.sort(1, /*descending=*/true);
    const auto probs = torch::softmax(sorted, 1);
    // Keep the likeliest tokens until they hold top_p; the first is always kept.
    const auto drop_sorted = (probs.cumsum(1) - probs) > o.top_p;
    logits = logits.masked_fill(torch::zeros_like(drop_sorted).scatter(1, order, drop_sorted), never);
  }
  return torch::multinomial(torch::softmax(logits, 1), 1, false, generator).squeeze(1);
}

// What beam search ranks (and greedy reports): log-probability / length^penalty, EOS counted in the length.
double beam_score(double logprob, int64_t length, double penalty) {
  return logprob / std::pow(static_cast<double>(length), penalty);
}

std::vector<GeneratedText> greedy_or_sample(const DecoderStep& step, const torch::Tensor& prompts,
                                            int64_t eos, const std::vector<int64_t>& suppress,
                                            const GenerationOptions& o) {
  const int64_t B = prompts.size(0);
  std::vector<GeneratedText> out(static_cast<size_t>(B));
  std::vector<std::vector<int64_t>> rows;  // the unfinished prompts and what they wrote, in cache order
  std::vector<int64_t> which;              // their places in `out`
  for (int64_t b = 0; b < B; ++b) {
    const auto p = prompts[b].contiguous();
    rows.emplace_back(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
    which.push_back(b);
  }
  torch::Generator generator = at::detail::createCPUGenerator(o.seed);
  KVCache cache;
  torch::Tensor input = prompts;
  for (int64_t t = 0; t < o.max_new_tokens && !rows.empty(); ++t) {
    // Choosing happens on the CPU (the sampling generator's device); the cache and the tokens fed back stay
    // where the prompts are.
    const auto logits = step(input, cache).select(1, -1).to(torch::kCPU, torch::kFloat).contiguous();
    const auto written = torch::log_softmax(logits, -1);  // before the bans, for the log-probabilities
    auto logp = written.clone();
    ban_tokens(logp, rows, suppress, o.no_repeat_ngram);
    const auto banned = logp == -std::numeric_limits<float>::infinity();
    const auto next =
        o.temperature > 0
            ? sample(logits.masked_fill(banned, -std::numeric_limits<float>::infinity()), o, generator)
            : logp.argmax(1);
    std::vector<int64_t> keep, tokens;
    std::vector<std::vector<int64_t>> kept_rows;
    std::vector<int64_t> kept_which;
    for (size_t r = 0; r < rows.size(); ++r) {
      const int64_t token = next[static_cast<int64_t>(r)].item<int64_t>();
      auto& result = out[static_cast<size_t>(which[r])];
      if (banned[static_cast<int64_t>(r)][token].item<bool>()) continue;  // every token banned: it ends here
      result.logprob += written[static_cast<int64_t>(r)][token].item<double>();
      if (token == eos) {
        result.finished = true;
        continue;
      }
      result.tokens.push_back(token);
      keep.push_back(static_cast<int64_t>(r));
      tokens.push_back(token);
      kept_rows.push_back(std::move(rows[r]));
      kept_rows.back().push_back(token);
      kept_which.push_back(which[r]);
    }
    rows = std::move(kept_rows);
    which = std::move(kept_which);
    if (rows.empty()) break;
    if (keep.size() < static_cast<size_t>(input.size(0)))
      cache.select(torch::tensor(keep).to(prompts.device()));
    input = torch::tensor(tokens).unsqueeze(1).to(prompts.device());
  }
  for (auto& r : out)
    r.score = beam_score(r.logprob, std::max<int64_t>(1, static_cast<int64_t>(r.tokens.size()) + r.finished),
                         o.length_penalty);
  return out;
}

struct Hypothesis {
  std::vector<int64_t> tokens;  // written so far
  double logprob = 0;
};

std::vector<GeneratedText> beam_search(const DecoderStep& step, const torch::Tensor& prompts, int64_t eos,
                                       const std::vector<int64_t>& suppress, const GenerationOptions& o) {
  const int64_t B = prompts.size(0), W = o.beam;
  std::vector<int64_t> prompt_length(static_cast<size_t>(B));
  std::vector<std::vector<int64_t>> prompt_rows;
  for (int64_t b = 0; b < B; ++b) {
    const auto p = prompts[b].contiguous();
    prompt_rows.emplace_back(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
  }
  // Row b * W + w of the cache is hypothesis w of prompt b. At first only w = 0 is live (the others would
  // repeat it); a prompt whose search has ended keeps its rows, unused, so that the batch keeps its shape.
  std::vector<std::vector<Hypothesis>> live(static_cast<size_t>(B));
  std::vector<std::vector<GeneratedText>> finished(static_cast<size_t>(B));
  std::vector<bool> done(static_cast<size_t>(B), false);
  for (auto& l : live) {
    l.assign(static_cast<size_t>(W), {});
    for (int64_t w = 1; w < W; ++w) l[static_cast<size_t>(w)].logprob = kNever;
  }
  auto add_finished = [&](int64_t b, const Hypothesis& h, bool ended) {
    auto& f = finished[static_cast<size_t>(b)];
    const auto length = static_cast<int64_t>(h.tokens.size()) + (ended ? 1 : 0);
    f.push_back({h.tokens, h.logprob, beam_score(h.logprob, length, o.length_penalty), ended});
    std::stable_sort(f.begin(), f.end(), [](const auto& x, const auto& y) { return x.score > y.score; });
    if (static_cast<int64_t>(f.size()) > W) f.pop_back();
  };

  KVCache cache;
  auto logits = step(prompts, cache).select(1, -1).to(torch::kCPU);
  cache.select(torch::arange(B).repeat_interleave(W).to(prompts.device()));
  logits = logits.repeat_interleave(W, 0);
  for (int64_t t = 1; t <= o.max_new_tokens; ++t) {
    auto logp = torch::log_softmax(logits.to(torch::kFloat), -1).contiguous();
    std::vector<std::vector<int64_t>> histories;  // what each row holds, for the repeat guard only
    if (o.no_repeat_ngram > 0)
      for (int64_t b = 0; b < B; ++b)
        for (const auto& h : live[static_cast<size_t>(b)]) {
          histories.push_back(prompt_rows[static_cast<size_t>(b)]);
          histories.back().insert(histories.back().end(), h.tokens.begin(), h.tokens.end());
        }
    ban_tokens(logp, histories, suppress, o.no_repeat_ngram);
    std::vector<int64_t> sources, tokens;
    for (int64_t b = 0; b < B; ++b) {
      auto& hyps = live[static_cast<size_t>(b)];
      if (done[static_cast<size_t>(b)]) {
        for (int64_t w = 0; w < W; ++w) {
          sources.push_back(b * W + w);
          tokens.push_back(eos);
        }
        continue;
      }
      // Every live hypothesis extended by every token, the 2W best considered (Hugging Face's beam search:
      // enough that W remain live however many of them end).
      std::vector<double> base(static_cast<size_t>(W));
      for (int64_t w = 0; w < W; ++w) base[static_cast<size_t>(w)] = hyps[static_cast<size_t>(w)].logprob;
      auto totals =
          logp.narrow(0, b * W, W).to(torch::kDouble) + torch::tensor(base, torch::kDouble).unsqueeze(1);
      const int64_t V = totals.size(1);
      const auto best = totals.view({-1}).topk(std::min<int64_t>(2 * W, W * V));
      const auto values = std::get<0>(best), indices = std::get<1>(best);
      std::vector<Hypothesis> next;
      for (int64_t rank = 0; rank < values.size(0) && static_cast<int64_t>(next.size()) < W; ++rank) {
        const double total = values[rank].item<double>();
        if (total == kNever) break;
        const int64_t index = indices[rank].item<int64_t>(), w = index / V, token = index % V;
        Hypothesis h{hyps[static_cast<size_t>(w)].tokens, total};
        if (token == eos) {
          if (rank < W) add_finished(b, h, true);
          continue;
        }
        h.tokens.push_back(token);
        next.push_back(std::move(h));
        sources.push_back(b * W + w);
        tokens.push_back(token);
      }
      // Filler rows for hypotheses that could not be made (fewer candidates than W): never extended.
      while (static_cast<int64_t>(next.size()) < W) {
        next.push_back({{}, kNever});
        sources.push_back(b * W);
        tokens.push_back(eos);
      }
      hyps = std::move(next);
      // Done once W have ended and no live one can still beat the worst of them: its log-probability only
      // falls, and the length dividing it is at most max_new_tokens (a positive penalty rewards length) or
      // at least the next one (a penalty of zero or less).
      const auto& f = finished[static_cast<size_t>(b)];
      double best_live = kNever;
      for (const auto& h : hyps) best_live = std::max(best_live, h.logprob);
      const int64_t bound_length = o.length_penalty > 0 ? o.max_new_tokens : t + 1;
      const bool cannot_improve =
          best_live == kNever || (static_cast<int64_t>(f.size()) == W &&
                                  beam_score(best_live, bound_length, o.length_penalty) <= f.back().score);
      if (cannot_improve) done[static_cast<size_t>(b)] = true;
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    if (t == o.max_new_tokens) {
      for (int64_t b = 0; b < B; ++b)
        if (!done[static_cast<size_t>(b)])
          for (const auto& h : live[static_cast<size_t>(b)])
            if (h.logprob != kNever) add_finished(b, h, false);
      break;
    }
    cache.select(torch::tensor(sources).to(prompts.device()));
    logits =
        step(torch::tensor(tokens).unsqueeze(1).to(prompts.device()), cache).select(1, -1).to(torch::kCPU);
  }
  std::vector<GeneratedText> out;
  for (int64_t b = 0; b < B; ++b) {
    const auto& f = finished[static_cast<size_t>(b)];
    out.push_back(f.empty() ? GeneratedText{} : f.front());
  }
  return out;
}

}  // namespace

void check_generation_options(const GenerationOptions& o) {
  auto usage = [](bool ok, auto&&... what) {
    if (!ok) throw UsageError(str_cat(what...));
  };
  usage(o.max_new_tokens >= 1 && o.max_new_tokens <= 4096, "--max-tokens must be in [1, 4096] (got ",
        o.max_new_tokens, ")");
  usage(o.beam >= 1 && o.beam <= 256, "--beam must be in [1, 256] (got ", o.beam, ")");
  usage(std::isfinite(o.length_penalty) && std::abs(o.length_penalty) <= 10,
        "--length-penalty must be in [-10, 10] (got ", o.length_penalty, ")");
  usage(std::isfinite(o.temperature) && o.temperature >= 0 && o.temperature <= 100,
        "--temperature must be in [0, 100] (got ", o.temperature, ")");
  usage(o.temperature == 0 || o.beam == 1,
        "--temperature samples one text; it cannot be combined with --beam ", o.beam);
  usage(o.top_k >= 0, "--top-k must be 0 (off) or more (got ", o.top_k, ")");
  usage(o.top_p > 0 && o.top_p <= 1, "--top-p must be in (0, 1] (got ", o.top_p, ")");
  usage((o.top_k == 0 && o.top_p == 1) || o.temperature > 0,
        "--top-k and --top-p shape sampling: give a --temperature above 0 with them");
  usage(o.no_repeat_ngram >= 0 && o.no_repeat_ngram <= 64, "--no-repeat-ngram must be in [0, 64] (got ",
        o.no_repeat_ngram, ")");
}

std::vector<GeneratedText> generate(const DecoderStep& step, const torch::Tensor& prompts, int64_t eos,
                                    const std::vector<int64_t>& suppress, const GenerationOptions& o) {
  check_generation_options(o);
  TORCH_CHECK(prompts.dim() == 2 && prompts.size(1) >= 1 && prompts.scalar_type() == torch::kInt64,
              "generate: prompts must be int64 [B, T] with T >= 1");
  if (prompts.size(0) == 0) return {};
  torch::NoGradGuard no_grad;
  return o.beam > 1 ? beam_search(step, prompts, eos, suppress, o)
                    : greedy_or_sample(step, prompts, eos, suppress, o);
}

}  // namespace mmlearn
