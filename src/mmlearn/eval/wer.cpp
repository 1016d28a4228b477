#include "mmlearn/eval/wer.h"

#include <algorithm>

#include "mmlearn/core/error.h"
#include "mmlearn/text/unicode.h"

namespace mmlearn {

namespace {

template <typename T>
int64_t edit_distance(const std::vector<T>& a, const std::vector<T>& b) {
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diagonal = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t space; (space = text.find(' ', start)) != std::string::npos; start = space + 1)
    if (space > start) out.push_back(text.substr(start, space - start));
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

}  // namespace

std::string normalize_transcript(const std::string& text) {
  std::u32string out;
  for (char32_t c : text::decode_utf8(text::lower_utf8(text))) {
    if (text::is_letter(c) || text::is_number(c) || c == U'\'') {
      out += c;
    } else if (!out.empty() && out.back() != U' ') {
      out += U' ';  // punctuation and whitespace separate words
    }
  }
  while (!out.empty() && out.back() == U' ') out.pop_back();
  return text::encode_utf8(out);
}

ErrorRate word_error_rate(const std::vector<std::string>& references,
                          const std::vector<std::string>& hypotheses) {
  check(references.size() == hypotheses.size(), "word error rate: ", references.size(), " references but ",
        hypotheses.size(), " hypotheses");
  ErrorRate r;
  for (size_t i = 0; i < references.size(); ++i) {
    const auto ref = words(normalize_transcript(references[i])),
               hyp = words(normalize_transcript(hypotheses[i]));
    r.errors += edit_distance(ref, hyp);
    r.reference_length += static_cast<int64_t>(ref.size());
  }
  return r;
}

ErrorRate char_error_rate(const std::vector<std::string>& references,
                          const std::vector<std::string>& hypotheses) {
  check(references.size() == hypotheses.size(), "character error rate: ", references.size(),
        " references but ", hypotheses.size(), " hypotheses");
  ErrorRate r;
  for (size_t i = 0; i < references.size(); ++i) {
    const auto ref = text::decode_utf8(normalize_transcript(references[i]));
    const auto hyp = text::decode_utf8(normalize_transcript(hypotheses[i]));
    r.errors += edit_distance(std::vector<char32_t>(ref.begin(), ref.end()),
                              std::vector<char32_t>(hyp.begin(), hyp.end()));
    r.reference_length += static_cast<int64_t>(ref.size());
  }
  return r;
}

}  // namespace mmlearn
