// Human-facing messages on stderr (stdout is for results and --json). Levels follow --quiet / --verbose.
//
//   mmlearn::log_info("trained ", steps, " steps in ", seconds, " s");
#pragma once

#include <iostream>

#include "mmlearn/core/error.h"

namespace mmlearn {

enum class LogLevel { quiet, info, debug };
LogLevel log_level();
void set_log_level(LogLevel level);

template <typename... Args>
void log_info(const Args&... args) {
  if (log_level() >= LogLevel::info) std::cerr << str_cat(args...) << std::endl;
}
template <typename... Args>
void log_warn(const Args&... args) {
  std::cerr << "warning: " << str_cat(args...) << std::endl;
}

}  // namespace mmlearn
