#include "mmlearn/text/hard_negative.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "mmlearn/text/unicode.h"

namespace mmlearn::text {
namespace {

struct CaptionWord {
  size_t begin, end;
  std::string lower;
};

// The caption's runs of letters, where they are.
std::vector<CaptionWord> caption_words(const std::string& s) {
  std::vector<CaptionWord> out;
  for (size_t i = 0; i < s.size();) {
    if (!std::isalpha(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    std::string lower;
    for (; j < s.size() && std::isalpha(static_cast<unsigned char>(s[j])); ++j)
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(s[j])));
    out.push_back({i, j, std::move(lower)});
    i = j;
  }
  return out;
}

// `replacement` for the word at [begin, end), capitalized where the word was.
std::string as_written(const std::string& caption, const CaptionWord& w, std::string replacement) {
  if (std::isupper(static_cast<unsigned char>(caption[w.begin])) && !replacement.empty())
    replacement[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(replacement[0])));
  return replacement;
}

// The caption with the words at `at` replaced (positions in increasing order).
std::string with_replacements(const std::string& caption,
                              const std::vector<std::pair<CaptionWord, std::string>>& at) {
  std::string out;
  size_t from = 0;
  for (const auto& [w, replacement] : at) {
    out += caption.substr(from, w.begin - from) + as_written(caption, w, replacement);
    from = w.end;
  }
  return out + caption.substr(from);
}

const std::vector<std::pair<std::string, std::string>> kOpposites = {
    {"left", "right"}, {"top", "bottom"}, {"above", "below"}, {"over", "under"}, {"upper", "lower"}};

std::optional<std::string> opposite_place(const std::string& word) {
  for (const auto& [a, b] : kOpposites) {
    if (word == a) return b;
    if (word == b) return a;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> hard_negative(const std::string& caption,
                                         const std::vector<std::vector<std::string>>& kinds) {
  const std::vector<CaptionWord> words = caption_words(caption);
  std::vector<std::pair<CaptionWord, std::string>> changes;
  for (const CaptionWord& w : words)
    if (const auto o = opposite_place(w.lower)) changes.emplace_back(w, *o);
  if (!changes.empty()) return with_replacements(caption, changes);
  std::vector<std::vector<std::string>> lowered = kinds;  // once, not for every word compared
  for (auto& kind : lowered)
    for (std::string& word : kind) word = lower_utf8(word);
  for (size_t i = 0; i < words.size(); ++i)
    for (const auto& kind : lowered) {
      const auto member = [&](const std::string& word) {
        return std::find(kind.begin(), kind.end(), word) != kind.end();
      };
      if (!member(words[i].lower)) continue;
      for (size_t j = i + 1; j < words.size(); ++j)
        if (words[j].lower != words[i].lower && member(words[j].lower))
          return with_replacements(caption, {{words[i], words[j].lower}, {words[j], words[i].lower}});
    }
  return std::nullopt;
}

}  // namespace mmlearn::text
