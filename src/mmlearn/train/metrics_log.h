// A run's metrics.jsonl: one JSON object a line (the step's loss, learning rate, held-out metrics), appended
// as training goes so that a run can be followed while it lasts.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace mmlearn {

inline void append_metrics(const std::filesystem::path& path, const nlohmann::json& line) {
  std::ofstream out(path, std::ios::app);
  out << line.dump() << "\n";
}

}  // namespace mmlearn
