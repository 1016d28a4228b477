#include "mmlearn/eval/caption_metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "mmlearn/core/error.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/eval/wer.h"

namespace mmlearn {

namespace {

constexpr int kMaxN = 4;
using Ngram = std::vector<std::string>;
using Counts = std::map<Ngram, double>;

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(normalize_transcript(text));
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Every n-gram of 1..kMaxN words with its count.
Counts ngram_counts(const std::vector<std::string>& w) {
  Counts counts;
  for (size_t n = 1; n <= kMaxN; ++n)
    for (size_t i = 0; i + n <= w.size(); ++i)
      counts[Ngram(w.begin() + std::ptrdiff_t(i), w.begin() + std::ptrdiff_t(i + n))] += 1;
  return counts;
}

void check_pairs(const std::vector<std::string>& hypotheses,
                 const std::vector<std::vector<std::string>>& references) {
  check(hypotheses.size() == references.size(), "caption metrics: ", hypotheses.size(), " captions but ",
        references.size(), " reference sets");
  for (size_t i = 0; i < references.size(); ++i)
    check(!references[i].empty(), "caption metrics: image ", i, " has no reference caption");
}

}  // namespace

double bleu4(const std::vector<std::string>& hypotheses,
             const std::vector<std::vector<std::string>>& references) {
  check_pairs(hypotheses, references);
  // COCO's constants keep an empty count from taking a logarithm of zero.
  constexpr double kTiny = 1e-15, kSmall = 1e-9;
  double test_length = 0, reference_length = 0;
  std::array<double, kMaxN> guessed{}, correct{};
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    const auto hyp = words(hypotheses[i]);
    Counts most;  // each n-gram's largest count in any one reference
    double closest = -1;
    for (const auto& ref : references[i]) {
      const auto w = words(ref);
      for (const auto& [ngram, count] : ngram_counts(w)) most[ngram] = std::max(most[ngram], count);
      const double length = double(w.size()), hyp_length = double(hyp.size());
      // The reference length closest to the caption's; the shorter one on a tie.
      if (closest < 0 || std::abs(length - hyp_length) < std::abs(closest - hyp_length) ||
          (std::abs(length - hyp_length) == std::abs(closest - hyp_length) && length < closest))
        closest = length;
    }
    test_length += double(hyp.size());
    reference_length += closest;
    for (int n = 1; n <= kMaxN; ++n) guessed[size_t(n - 1)] += std::max(0.0, double(hyp.size()) - n + 1);
    for (const auto& [ngram, count] : ngram_counts(hyp)) {
      const auto it = most.find(ngram);
      if (it != most.end()) correct[ngram.size() - 1] += std::min(count, it->second);
    }
  }
  double product = 1;
  for (size_t n = 0; n < kMaxN; ++n) product *= (correct[n] + kTiny) / (guessed[n] + kSmall);
  double bleu = std::pow(product, 1.0 / kMaxN);
  const double ratio = (test_length + kTiny) / (reference_length + kSmall);
  if (ratio < 1) bleu *= std::exp(1 - 1 / ratio);
  return bleu;
}

double cider_d(const std::vector<std::string>& hypotheses,
               const std::vector<std::vector<std::string>>& references) {
  check_pairs(hypotheses, references);
  constexpr double kSigma = 6.0;
  std::vector<std::vector<Counts>> ref_counts(references.size());
  std::map<Ngram, double> document_frequency;  // images whose references hold the n-gram
  for (size_t i = 0; i < references.size(); ++i) {
    std::set<Ngram> seen;
    for (const auto& ref : references[i]) {
      ref_counts[i].push_back(ngram_counts(words(ref)));
      for (const auto& [ngram, count] : ref_counts[i].back()) seen.insert(ngram);
    }
    for (const auto& ngram : seen) document_frequency[ngram] += 1;
  }
  const double log_images = std::log(double(references.size()));
  struct Vector {
    std::array<std::map<Ngram, double>, kMaxN> weights;
    std::array<double, kMaxN> norm{};
    double length = 0;  // COCO counts bigrams here: the words less one, the same difference between two
  };
  auto tf_idf = [&](const Counts& counts) {
    Vector v;
    for (const auto& [ngram, tf] : counts) {
      const auto it = document_frequency.find(ngram);
      const double df = std::log(std::max(1.0, it == document_frequency.end() ? 0.0 : it->second));
      const size_t n = ngram.size() - 1;
      v.weights[n][ngram] = tf * (log_images - df);
      v.norm[n] += std::pow(v.weights[n][ngram], 2);
      if (n == 1) v.length += tf;
    }
    for (auto& x : v.norm) x = std::sqrt(x);
    return v;
  };
  double total = 0;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    const Vector hyp = tf_idf(ngram_counts(words(hypotheses[i])));
    std::array<double, kMaxN> score{};
    for (const auto& counts : ref_counts[i]) {
      const Vector ref = tf_idf(counts);
      const double delta = hyp.length - ref.length;
      for (size_t n = 0; n < kMaxN; ++n) {
        double value = 0;
        for (const auto& [ngram, weight] : hyp.weights[n]) {
          const auto it = ref.weights[n].find(ngram);
          if (it != ref.weights[n].end()) value += std::min(weight, it->second) * it->second;
        }
        if (hyp.norm[n] != 0 && ref.norm[n] != 0) value /= hyp.norm[n] * ref.norm[n];
        score[n] += value * std::exp(-(delta * delta) / (2 * kSigma * kSigma));
      }
    }
    double mean = 0;
    for (double s : score) mean += s / kMaxN;
    total += 10.0 * mean / double(ref_counts[i].size());
  }
  return hypotheses.empty() ? 0.0 : total / double(hypotheses.size());
}

bool grounded_caption(const std::string& caption, const nlohmann::json& objects) {
  const auto& colors = data::color_names();
  const auto& shapes = data::shape_names();
  auto is = [](const std::vector<std::string>& names, const std::string& w) {
    return std::find(names.begin(), names.end(), w) != names.end();
  };
  std::multiset<std::pair<std::string, std::string>> named, held;
  const auto w = words(caption);
  for (size_t i = 0; i < w.size(); ++i) {
    if (!is(shapes, w[i])) continue;
    if (i == 0 || !is(colors, w[i - 1])) return false;
    named.insert({w[i - 1], w[i]});
  }
  if (!objects.is_array()) return false;
  for (const auto& o : objects) {
    if (!o.is_object() || !o.contains("color") || !o.contains("shape") || !o["color"].is_string() ||
        !o["shape"].is_string())
      return false;
    held.insert({o["color"].get<std::string>(), o["shape"].get<std::string>()});
  }
  return named == held;
}

}  // namespace mmlearn
