#include "mmlearn/models/whisper_decoding.h"

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/error.h"
#include "mmlearn/text/unicode.h"

namespace mmlearn {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Python's list[-n:] for any n (n <= 0 keeps everything or drops from the front, as slicing does).
std::vector<int64_t> last_n(const std::vector<int64_t>& v, int64_t n) {
  const auto size = static_cast<int64_t>(v.size());
  const int64_t start = n > 0 ? std::max<int64_t>(0, size - n) : std::min(size, -n);
  return {v.begin() + start, v.end()};
}

std::vector<int64_t> suppressed_tokens(const text::WhisperTokenizer& tok, const std::string& spec,
                                       bool non_speech_symbols) {
  std::set<int64_t> ids;
  bool non_speech = false;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = text::strip_ascii_space(spec.substr(start, comma - start));
    start = comma + 1;
    if (item.empty()) continue;
    int64_t id = 0;
    try {
      size_t used = 0;
      id = std::stoll(item, &used);
      check(used == item.size(), "");
    } catch (const std::exception&) {
      throw UsageError(str_cat("suppress_tokens: \"", item, "\" is not a token id"));
    }
    if (id == -1)
      non_speech = true;
    else if (id >= 0 && id < tok.vocab_size())
      ids.insert(id);
    else
      throw UsageError(str_cat("suppress_tokens: token id ", id, " is outside the vocabulary"));
  }
  if (non_speech && non_speech_symbols)
    for (int64_t id : tok.non_speech_tokens()) ids.insert(id);
  for (int64_t id : {tok.transcribe, tok.translate, tok.sot, tok.sot_prev, tok.sot_lm, tok.no_speech})
    ids.insert(id);
  return {ids.begin(), ids.end()};
}

// The logit rules of decoding.py, applied to the next-token logits [N, V] of sequences `tokens`.
struct LogitRules {
  const text::WhisperTokenizer* tok;
  int64_t sample_begin;
  bool suppress_blank;
  std::vector<int64_t> suppress;
  bool timestamps;
  int64_t max_initial_timestamp_index;
  std::vector<int64_t> blank;  // " " and <|endoftext|>

  void apply(torch::Tensor& logits, const std::vector<std::vector<int64_t>>& tokens) const {
    const int64_t N = logits.size(0), V = logits.size(1), begin = tok->timestamp_begin;
    auto l = logits.accessor<float, 2>();
    const bool first = static_cast<int64_t>(tokens[0].size()) == sample_begin;
    if (suppress_blank && first)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t id : blank) l[n][id] = kNegInf;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t id : suppress) l[n][id] = kNegInf;
    if (!timestamps) return;
    for (int64_t n = 0; n < N; ++n) l[n][tok->no_timestamps] = kNegInf;
    for (int64_t n = 0; n < N; ++n) {
      const auto& seq = tokens[static_cast<size_t>(n)];
      const std::vector<int64_t> sampled(seq.begin() + sample_begin, seq.end());
      const size_t k = sampled.size();
      const bool last_was_timestamp = k >= 1 && sampled[k - 1] >= begin;
      const bool penultimate_was_timestamp = k < 2 || sampled[k - 2] >= begin;
      // Timestamps come in pairs (start, end), except right before <|endoftext|>.
      if (last_was_timestamp) {
        if (penultimate_was_timestamp)
          for (int64_t id = begin; id < V; ++id) l[n][id] = kNegInf;
        else
          for (int64_t id = 0; id < tok->eot; ++id) l[n][id] = kNegInf;
      }
      // Timestamps never decrease, and a segment never has zero length.
      int64_t last_timestamp = -1;
      for (int64_t t : sampled)
        if (t >= begin) last_timestamp = t;
      if (last_timestamp >= 0) {
        const int64_t limit =
            last_was_timestamp && !penultimate_was_timestamp ? last_timestamp : last_timestamp + 1;
        for (int64_t id = begin; id < std::min(limit, V); ++id) l[n][id] = kNegInf;
      }
    }
    if (first) {  // start with a timestamp, no later than max_initial_timestamp
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t id = 0; id < begin; ++id) l[n][id] = kNegInf;
        if (max_initial_timestamp_index >= 0)
          for (int64_t id = begin + max_initial_timestamp_index + 1; id < V; ++id) l[n][id] = kNegInf;
      }
    }
    // Where all timestamps together are likelier than the best text token, a timestamp it is.
    auto logprobs = torch::log_softmax(logits, -1);
    for (int64_t n = 0; n < N; ++n) {
      const double timestamp_logprob = logprobs[n].narrow(0, begin, V - begin).logsumexp(0).item<double>();
      const double max_text_logprob = logprobs[n].narrow(0, 0, begin).max().item<double>();
      if (timestamp_logprob > max_text_logprob)
        for (int64_t id = 0; id < begin; ++id) l[n][id] = kNegInf;
    }
  }
};

torch::Tensor to_tensor(const std::vector<std::vector<int64_t>>& rows) {
  const auto n = static_cast<int64_t>(rows.size()), t = static_cast<int64_t>(rows[0].size());
  auto out = torch::empty({n, t}, torch::kLong);
  auto a = out.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < t; ++j) a[i][j] = rows[static_cast<size_t>(i)][static_cast<size_t>(j)];
  return out;
}

}  // namespace

TensorMap dump_whisper(WhisperBundle& w, const std::filesystem::path& audio_file,
                       const std::vector<int64_t>& tokens) {
  auto samples = audio::load_audio(audio_file);
  auto audio =
      torch::from_blob(samples.data(), {static_cast<int64_t>(samples.size())}, torch::kFloat).clone();
  TensorMap out;
  // Whisper's own models see 30 s (the reference's pad_or_trim); a model with a shorter window (trained here)
  // sees its window's features as transcription makes them.
  const int64_t window_frames = 2 * w.model->config.n_audio_ctx;
  out["input_features"] = window_frames == audio::whisper::chunk_frames
                              ? audio::log_mel_spectrogram(audio::pad_or_trim(audio), w.model->config.n_mels)
                              : audio::window_features(audio, w.model->config.n_mels, window_frames);
  c10::InferenceMode inference;
  auto features = w.model->encoder->forward(out["input_features"].unsqueeze(0));
  out["encoder_output"] = features[0];
  if (!tokens.empty()) {
    for (int64_t t : tokens)
      check(t >= 0 && t < w.model->config.n_vocab, "token id ", t, " is outside the vocabulary of ",
            w.model->config.n_vocab);
    check(static_cast<int64_t>(tokens.size()) <= w.model->config.n_text_ctx, tokens.size(),
          " tokens exceed the decoder's context of ", w.model->config.n_text_ctx);
    out["logits"] = w.model->decoder->forward(torch::tensor(tokens, torch::kLong).unsqueeze(0), features)[0];
  }
  return out;
}

double compression_ratio(const std::string& text) {
  if (text.empty()) return 0.0;
  uLongf size = compressBound(static_cast<uLong>(text.size()));
  std::string out(size, '\0');
  check(compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(text.data()),
                  static_cast<uLong>(text.size()), Z_DEFAULT_COMPRESSION) == Z_OK,
        "zlib failed");
  return static_cast<double>(text.size()) / static_cast<double>(size);
}

std::vector<std::vector<std::pair<std::string, double>>> detect_language(
    WhisperBundle& w, const torch::Tensor& audio_features) {
  const auto& tok = w.tokenizer;
  check(!tok.languages().empty(), "this model has no language tokens, so it cannot detect the language");
  c10::InferenceMode inference;
  const int64_t B = audio_features.size(0);
  auto sot = torch::full({B, 1}, tok.sot, torch::kLong);
  auto logits = w.model->decoder->forward(sot, audio_features).select(1, 0);
  const int64_t first = tok.sot + 1, count = static_cast<int64_t>(tok.languages().size());
  auto probs = torch::softmax(logits.narrow(1, first, count), -1);
  std::vector<std::vector<std::pair<std::string, double>>> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < count; ++i)
      out[static_cast<size_t>(b)].emplace_back(tok.languages()[static_cast<size_t>(i)],
                                               probs[b][i].item<double>());
    std::stable_sort(out[static_cast<size_t>(b)].begin(), out[static_cast<size_t>(b)].end(),
                     [](const auto& x, const auto& y) { return x.second > y.second; });
  }
  return out;
}

std::vector<WhisperDecodeResult> decode_whisper(WhisperBundle& w, const torch::Tensor& mel,
                                                const WhisperDecodeOptions& o) {
  c10::InferenceMode inference;
  const auto& tok = w.tokenizer;
  const WhisperConfig& config = w.model->config;
  check(o.task == "transcribe" || o.task == "translate", "unknown task \"", o.task,
        "\" (expected transcribe or translate)");
  check(o.temperature >= 0 && o.patience > 0, "temperature must be >= 0 and patience > 0");
  check(o.beam_size == 0 || o.temperature == 0, "beam search decodes at temperature 0 only");
  const int64_t n_ctx = config.n_text_ctx;
  const int64_t sample_len = o.sample_len > 0 ? o.sample_len : n_ctx / 2;
  const int64_t n_group = o.beam_size > 0 ? o.beam_size : 1;
  const bool multilingual = w.multilingual;

  // The prompt: [<|startofprev|> earlier text] <|startoftranscript|> [<|lang|> <|task|>] [<|notimestamps|>]
  // [prefix]. OpenAI's tokenizer fills language "en" for multilingual models until detection overwrites it;
  // English-only models get <|startoftranscript|> alone.
  std::vector<int64_t> initial = multilingual
                                     ? tok.sot_sequence(o.language.empty() ? "en" : o.language, o.task)
                                     : std::vector<int64_t>{tok.sot};
  if (o.without_timestamps) initial.push_back(tok.no_timestamps);
  if (!text::strip_ascii_space(o.prefix).empty()) {
    auto prefix = last_n(tok.encode(" " + text::strip_ascii_space(o.prefix)), n_ctx / 2 - sample_len);
    initial.insert(initial.end(), prefix.begin(), prefix.end());
  }
  if (!o.prompt.empty()) {
    auto prompt = last_n(o.prompt, n_ctx / 2 - 1);
    prompt.insert(prompt.begin(), tok.sot_prev);
    initial.insert(initial.begin(), prompt.begin(), prompt.end());
  }
  const int64_t sample_begin = static_cast<int64_t>(initial.size());
  const int64_t sot_index = std::find(initial.begin(), initial.end(), tok.sot) - initial.begin();

  LogitRules rules{&tok,
                   sample_begin,
                   o.suppress_blank,
                   suppressed_tokens(tok, o.suppress_tokens, w.suppress_non_speech),
                   !o.without_timestamps,
                   static_cast<int64_t>(std::lround(o.max_initial_timestamp / 0.02)),
                   {}};
  if (o.max_initial_timestamp < 0) rules.max_initial_timestamp_index = -1;
  // A model that never learned timestamps (trained behind <|notimestamps|>) must not write one: its stray
  // timestamp tokens would cut the text into cues at random times.
  if (!w.timestamps)
    for (int64_t id = tok.timestamp_begin; id < tok.vocab_size(); ++id) rules.suppress.push_back(id);
  rules.blank = tok.encode(" ");
  rules.blank.push_back(tok.eot);

  auto audio_features = w.model->encoder->forward(mel.to(torch::kFloat));
  const int64_t n_audio = audio_features.size(0);
  std::vector<std::vector<int64_t>> tokens(static_cast<size_t>(n_audio), initial);
  std::vector<std::string> languages(static_cast<size_t>(n_audio), o.language.empty() ? "en" : o.language);
  if (o.language.empty() && multilingual) {
    auto probs = detect_language(w, audio_features);
    for (int64_t b = 0; b < n_audio; ++b) {
      languages[static_cast<size_t>(b)] = probs[static_cast<size_t>(b)][0].first;
      tokens[static_cast<size_t>(b)][static_cast<size_t>(sot_index + 1)] =
          tok.language_token(languages[static_cast<size_t>(b)]);
    }
  }
  // Each audio's group of n_group hypotheses, side by side.
  std::vector<std::vector<int64_t>> rows;
  for (const auto& t : tokens)
    for (int64_t g = 0; g < n_group; ++g) rows.push_back(t);
  auto features = n_group > 1 ? audio_features.repeat_interleave(n_group, 0) : audio_features;
  const auto n_rows = static_cast<int64_t>(rows.size());
  std::vector<double> sum_logprobs(static_cast<size_t>(n_rows), 0.0);
  std::vector<double> no_speech(static_cast<size_t>(n_audio), std::nan(""));
  // Beam search: finished candidates per audio, in the order they were found.
  std::vector<std::vector<std::pair<std::vector<int64_t>, double>>> finished(static_cast<size_t>(n_audio));
  const auto max_candidates = static_cast<size_t>(std::lround(static_cast<double>(n_group) * o.patience));
  torch::Generator generator = at::detail::createCPUGenerator(o.seed);

  WhisperKVCache cache;
  for (int64_t i = 0; i < sample_len; ++i) {
    torch::Tensor input = cache.empty() ? to_tensor(rows) : to_tensor(rows).narrow(1, -1, 1);
    auto logits = w.model->decoder->forward(input, features, &cache);
    if (i == 0 && tok.no_speech >= 0) {
      auto probs = torch::softmax(logits.select(1, sot_index), -1);
      for (int64_t b = 0; b < n_audio; ++b)
        no_speech[static_cast<size_t>(b)] = probs[b * n_group][tok.no_speech].item<double>();
    }
    logits = logits.select(1, -1).contiguous();
    rules.apply(logits, rows);
    auto logprobs = torch::log_softmax(logits, -1);
    bool completed = true;
    if (n_group == 1 || o.beam_size == 0) {
      torch::Tensor next = o.temperature == 0 ? logits.argmax(-1)
                                              : torch::multinomial(torch::softmax(logits / o.temperature, -1),
                                                                   1, false, generator)
                                                    .squeeze(1);
      for (int64_t r = 0; r < n_rows; ++r) {
        auto& row = rows[static_cast<size_t>(r)];
        int64_t token = next[r].item<int64_t>();
        if (row.back() == tok.eot) {
          token = tok.eot;
        } else {
          sum_logprobs[static_cast<size_t>(r)] += logprobs[r][token].item<double>();
        }
        row.push_back(token);
        completed = completed && token == tok.eot;
      }
    } else {
      std::vector<std::vector<int64_t>> next_rows;
      std::vector<int64_t> sources;
      std::vector<double> next_sums;
      for (int64_t a = 0; a < n_audio; ++a) {
        // Every hypothesis extended by its beam_size + 1 likeliest tokens, ranked by total log-probability.
        std::vector<std::pair<std::vector<int64_t>, double>> scores;
        std::vector<int64_t> score_source;
        std::map<std::vector<int64_t>, size_t> seen;
        for (int64_t j = 0; j < n_group; ++j) {
          const int64_t r = a * n_group + j;
          auto [values, indices] = logprobs[r].topk(n_group + 1);
          for (int64_t k = 0; k < n_group + 1; ++k) {
            auto seq = rows[static_cast<size_t>(r)];
            seq.push_back(indices[k].item<int64_t>());
            const double score = static_cast<double>(
                static_cast<float>(sum_logprobs[static_cast<size_t>(r)]) + values[k].item<float>());
            if (auto it = seen.find(seq); it != seen.end()) {  // a dict keeps the first key's place
              scores[it->second].second = score;
              score_source[it->second] = r;
              continue;
            }
            seen[seq] = scores.size();
            scores.emplace_back(std::move(seq), score);
            score_source.push_back(r);
          }
        }
        std::vector<size_t> order(scores.size());
        for (size_t k = 0; k < order.size(); ++k) order[k] = k;
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t x, size_t y) { return scores[x].second > scores[y].second; });
        std::vector<std::pair<std::vector<int64_t>, double>> newly_finished;
        int64_t saved = 0;
        for (size_t k : order) {
          if (scores[k].first.back() == tok.eot) {
            newly_finished.push_back(scores[k]);
          } else {
            next_rows.push_back(scores[k].first);
            next_sums.push_back(scores[k].second);
            sources.push_back(score_source[k]);
            if (++saved == n_group) break;
          }
        }
        auto& done = finished[static_cast<size_t>(a)];
        for (auto& candidate : newly_finished) {
          if (done.size() >= max_candidates) break;
          bool present = false;
          for (auto& d : done)
            if (d.first == candidate.first) present = true, d.second = candidate.second;
          if (!present) done.push_back(std::move(candidate));
        }
        completed = completed && done.size() >= max_candidates;
      }
      rows = std::move(next_rows);
      sum_logprobs = std::move(next_sums);
      cache.select(torch::tensor(sources, torch::kLong));
    }
    if (completed || static_cast<int64_t>(rows[0].size()) > n_ctx) break;
  }

  // Candidates per audio: greedy has its one row; beam search its finished ones, topped up with the best
  // unfinished ones when too few finished.
  std::vector<WhisperDecodeResult> results;
  for (int64_t a = 0; a < n_audio; ++a) {
    std::vector<std::pair<std::vector<int64_t>, double>> candidates;
    if (o.beam_size == 0) {
      for (int64_t g = 0; g < n_group; ++g)
        candidates.emplace_back(rows[static_cast<size_t>(a * n_group + g)],
                                sum_logprobs[static_cast<size_t>(a * n_group + g)]);
    } else {
      candidates = finished[static_cast<size_t>(a)];
      std::vector<int64_t> order(static_cast<size_t>(n_group));
      for (int64_t j = 0; j < n_group; ++j) order[static_cast<size_t>(j)] = j;
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
        return sum_logprobs[static_cast<size_t>(a * n_group + x)] >
               sum_logprobs[static_cast<size_t>(a * n_group + y)];
      });
      for (int64_t j : order) {
        if (static_cast<int64_t>(candidates.size()) >= n_group) break;
        auto seq = rows[static_cast<size_t>(a * n_group + j)];
        seq.push_back(tok.eot);
        candidates.emplace_back(seq, sum_logprobs[static_cast<size_t>(a * n_group + j)]);
      }
    }
    // Rank by log-probability over length (or Google NMT's length penalty).
    size_t best = 0;
    double best_score = -std::numeric_limits<double>::infinity();
    std::vector<std::vector<int64_t>> sampled;
    for (size_t c = 0; c < candidates.size(); ++c) {
      auto& seq = candidates[c].first;
      seq.push_back(tok.eot);  // greedy rows may stop at sample_len without one
      auto end = std::find(seq.begin() + sample_begin, seq.end(), tok.eot);
      sampled.emplace_back(seq.begin() + sample_begin, end);
      const double length = static_cast<double>(sampled.back().size());
      const double penalty = o.length_penalty ? std::pow((5.0 + length) / 6.0, *o.length_penalty) : length;
      const double score = candidates[c].second / penalty;
      if (score > best_score || c == 0) best_score = score, best = c;
    }
    WhisperDecodeResult r;
    r.language = languages[static_cast<size_t>(a)];
    r.tokens = sampled[best];
    r.text = text::strip_ascii_space(tok.decode(r.tokens, /*specials=*/true));
    r.sum_logprob = candidates[best].second;
    r.avg_logprob = r.sum_logprob / static_cast<double>(r.tokens.size() + 1);
    r.no_speech_prob = no_speech[static_cast<size_t>(a)];
    r.temperature = o.temperature;
    r.compression_ratio = compression_ratio(r.text);
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace mmlearn
