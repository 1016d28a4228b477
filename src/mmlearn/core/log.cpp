#include "mmlearn/core/log.h"

#include <atomic>

namespace mmlearn {
namespace {
std::atomic<LogLevel> g_level{LogLevel::info};
}
LogLevel log_level() { return g_level; }
void set_log_level(LogLevel level) { g_level = level; }
}  // namespace mmlearn
