#include "mmlearn/text/clean_up.h"

#include <utility>

namespace mmlearn::text {

std::string clean_up_tokenization(std::string text) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  // Each rule over the whole text in turn, left to right without overlaps, as Python's str.replace.
  for (const auto& [from_c, to_c] : kRules) {
    const std::string from = from_c, to = to_c;
    std::string out;
    size_t start = 0;
    for (size_t p; (p = text.find(from, start)) != std::string::npos; start = p + from.size())
      out.append(text, start, p - start).append(to);
    text = out.append(text, start, std::string::npos);
  }
  return text;
}

}  // namespace mmlearn::text
