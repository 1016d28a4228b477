// Errors at IO and user boundaries: what failed, where (file, line, field), and what to do.
//
//   throw mmlearn::Error("data/train.jsonl:12: field \"image\": file not found (check the path)");
//   mmlearn::check(n < limit, "header size ", n, " exceeds limit ", limit);
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mmlearn {

// Failure caused by input (files, data, flags): the CLI prints what() and exits with status 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Wrong command-line usage: the CLI prints what() and exits with status 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

// "a, b, c": names in a message.
inline std::string join(const std::vector<std::string>& parts, const std::string& separator = ", ") {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : separator) + p;
  return out;
}

template <typename... Args>
void check(bool condition, const Args&... message) {
  if (!condition) throw Error(str_cat(message...));
}

}  // namespace mmlearn
