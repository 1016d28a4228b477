// A self-contained HTML report of a training run: loss and held-out metric curves (inline SVG) and a grid of
// example text→image searches with their top images (inline PNG). No network, no scripts: one file to open.
//
//   mmlearn::write_run_report("run/report.html", "run/metrics.jsonl", final_eval, searches);
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn {

struct SearchHit {
  std::filesystem::path image;
  std::string caption;
  double score = 0;
};
struct SearchExample {
  std::string query;
  std::vector<SearchHit> hits;
};

void write_run_report(const std::filesystem::path& out, const std::filesystem::path& metrics_jsonl,
                      const nlohmann::json& final_eval, const std::vector<SearchExample>& searches,
                      const std::string& title = "mmlearn run");

// A polyline chart of one or more series [(x, y)] as an inline SVG element.
std::string svg_line_chart(
    const std::string& title,
    const std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>>& series, double y_min,
    double y_max);

}  // namespace mmlearn
