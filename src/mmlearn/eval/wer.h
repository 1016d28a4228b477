// Word and character error rates of transcripts: edit distance (substitutions + deletions + insertions) over
// the reference length, summed over a corpus. Texts are compared after a light normalization (lower case,
// punctuation removed, whitespace collapsed), the basic form of Whisper's English normalizer.
//
//   mmlearn::ErrorRate wer = mmlearn::word_error_rate({"a red circle"}, {"a red square"});  // 1 / 3
#pragma once

#include <string>
#include <vector>

namespace mmlearn {

struct ErrorRate {
  int64_t errors = 0, reference_length = 0;
  double rate() const { return reference_length ? double(errors) / double(reference_length) : 0.0; }
};

std::string normalize_transcript(const std::string& text);
ErrorRate word_error_rate(const std::vector<std::string>& references,
                          const std::vector<std::string>& hypotheses);
ErrorRate char_error_rate(const std::vector<std::string>& references,
                          const std::vector<std::string>& hypotheses);

}  // namespace mmlearn
