#include "mmlearn/eval/report.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/base64.h"
#include "mmlearn/core/error.h"

namespace mmlearn {
using nlohmann::json;

namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string fmt(double v, int precision = 3) {
  std::ostringstream s;
  s.precision(precision);
  s << v;
  return s.str();
}

// The retrieval directions an evaluation holds ({"text_to_image": {"R@1": ..}, ...}), whichever they are.
std::vector<std::pair<std::string, json>> retrieval_of(const json& e) {
  std::vector<std::pair<std::string, json>> out;
  if (!e.is_object() || !e.contains("retrieval") || !e["retrieval"].is_object()) return out;
  for (auto it = e["retrieval"].begin(); it != e["retrieval"].end(); ++it)
    if (it.value().is_object()) out.emplace_back(it.key(), it.value());
  return out;
}

}  // namespace

std::string svg_line_chart(
    const std::string& title,
    const std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>>& series, double y_min,
    double y_max) {
  // The legend gets a column of its own on the right, so long series names never cover the plot.
  const double W = 620, H = 260, left = 50, right = 170, top = 28, bottom = 30;
  double x_min = INFINITY, x_max = -INFINITY;
  for (const auto& [name, points] : series)
    for (const auto& [x, y] : points) x_min = std::min(x_min, x), x_max = std::max(x_max, x);
  if (!std::isfinite(x_min)) x_min = 0, x_max = 1;
  if (x_max <= x_min) x_max = x_min + 1;
  if (y_max <= y_min) y_max = y_min + 1;
  auto px = [&](double x) { return left + (x - x_min) / (x_max - x_min) * (W - left - right); };
  auto py = [&](double y) { return top + (1 - (y - y_min) / (y_max - y_min)) * (H - top - bottom); };
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"};
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' viewBox='0 0 " << W
    << " " << H << "' font-family='sans-serif' font-size='11'>";
  s << "<text x='" << W / 2 << "' y='16' text-anchor='middle' font-size='13'>" << html_escape(title)
    << "</text>";
  for (int i = 0; i <= 4; ++i) {
    double y = y_min + (y_max - y_min) * i / 4;
    s << "<line x1='" << left << "' x2='" << W - right << "' y1='" << py(y) << "' y2='" << py(y)
      << "' stroke='#ddd'/><text x='" << left - 4 << "' y='" << py(y) + 4 << "' text-anchor='end'>" << fmt(y)
      << "</text>";
  }
  s << "<text x='" << left << "' y='" << H - 8 << "'>" << fmt(x_min, 6) << "</text><text x='" << W - right
    << "' y='" << H - 8 << "' text-anchor='end'>" << fmt(x_max, 6) << " steps</text>";
  for (size_t k = 0; k < series.size(); ++k) {
    const char* color = colors[k % 6];
    s << "<polyline fill='none' stroke='" << color << "' stroke-width='1.5' points='";
    for (const auto& [x, y] : series[k].second) s << px(x) << "," << py(std::clamp(y, y_min, y_max)) << " ";
    s << "'/><line x1='" << W - right + 10 << "' x2='" << W - right + 26 << "' y1='" << top + 8 + 16 * k
      << "' y2='" << top + 8 + 16 * k << "' stroke='" << color << "' stroke-width='2'/><text x='"
      << W - right + 30 << "' y='" << top + 12 + 16 * k << "'>" << html_escape(series[k].first) << "</text>";
  }
  s << "</svg>";
  return s.str();
}

void write_run_report(const std::filesystem::path& out, const std::filesystem::path& metrics_jsonl,
                      const json& final_eval, const std::vector<SearchExample>& searches,
                      const std::string& title) {
  std::vector<std::pair<double, double>> loss;
  std::map<std::string, std::vector<std::pair<double, double>>> curves;
  std::vector<std::pair<int64_t, std::string>> samples;  // (step, contact sheet relative to the run)
  double loss_max = 0;
  std::ifstream in(metrics_jsonl);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step")) continue;
    double step = j["step"].get<double>();
    if (j.contains("loss")) {
      loss.emplace_back(step, j["loss"].get<double>());
      loss_max = std::max(loss_max, j["loss"].get<double>());
    }
    if (j.contains("eval")) {
      const json& e = j["eval"];
      for (const auto& [direction, recall] : retrieval_of(e))
        if (recall.contains("R@10") && recall["R@10"].is_number())
          curves[direction + " R@10"].emplace_back(step, recall["R@10"].get<double>());
      if (e.contains("zero_shot") && e["zero_shot"].is_object())
        for (auto it = e["zero_shot"].begin(); it != e["zero_shot"].end(); ++it)
          if (it.value().is_number())
            curves["zero-shot " + it.key()].emplace_back(step, it.value().get<double>());
      if (e.contains("samples") && e["samples"].is_string())
        samples.emplace_back(static_cast<int64_t>(step), e["samples"].get<std::string>());
    }
  }
  std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>> metric_series(curves.begin(),
                                                                                            curves.end());
  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset='utf-8'><title>" << html_escape(title) << "</title><style>"
    << "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
    << "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}.grid "
       "td{text-align:center;vertical-align:top}"
    << ".grid img{width:96px;height:96px;image-rendering:pixelated}.cap{font-size:11px;max-width:110px}"
    << "</style></head><body><h1>" << html_escape(title) << "</h1>";
  if (final_eval.is_object()) {
    h << "<h2>Held-out results</h2><table><tr><th>metric</th><th>value</th></tr>";
    auto row = [&](const std::string& name, const std::string& value) {
      h << "<tr><td style='text-align:left'>" << html_escape(name) << "</td><td>" << value << "</td></tr>";
    };
    for (const auto& [direction, recall] : retrieval_of(final_eval))
      for (const char* k : {"R@1", "R@5", "R@10"})
        if (recall.contains(k) && recall[k].is_number())
          row(direction + " " + k, fmt(100 * recall[k].get<double>(), 3) + "%");
    if (final_eval.contains("zero_shot") && final_eval["zero_shot"].is_object())
      for (auto it = final_eval["zero_shot"].begin(); it != final_eval["zero_shot"].end(); ++it)
        if (it.value().is_number())
          row("zero-shot " + it.key(), fmt(100 * it.value().get<double>(), 3) + "%");
    // Every other number, and those one level down ({"transcription": {"wer": ...}}).
    for (auto it = final_eval.begin(); it != final_eval.end(); ++it) {
      if (it.key() == "retrieval" || it.key() == "zero_shot" || it.key() == "zero_shot_n") continue;
      if (it.value().is_number()) row(it.key(), fmt(it.value().get<double>(), 4));
      if (it.value().is_object())
        for (auto sub = it.value().begin(); sub != it.value().end(); ++sub)
          if (sub.value().is_number()) row(it.key() + " " + sub.key(), fmt(sub.value().get<double>(), 4));
    }
    h << "</table>";
  }
  h << "<h2>Training</h2>" << svg_line_chart("training loss", {{"loss", loss}}, 0, std::max(loss_max, 1e-3));
  if (!metric_series.empty()) h << " " << svg_line_chart("held-out metrics", metric_series, 0, 1);
  if (!searches.empty()) {
    h << "<h2>Example searches (text → image, held-out images)</h2><table class='grid'>";
    for (const auto& s : searches) {
      h << "<tr><th style='text-align:left;max-width:160px'>" << html_escape(s.query) << "</th>";
      for (const auto& hit : s.hits) {
        std::string bytes;
        try {
          bytes = read_file(hit.image);
        } catch (const Error&) {
        }
        h << "<td><img alt='" << html_escape(hit.caption) << "' src='data:image/png;base64,"
          << encode_base64(bytes) << "'><div class='cap'>" << html_escape(hit.caption) << "<br>"
          << fmt(hit.score) << "</div></td>";
      }
      h << "</tr>";
    }
    h << "</table>";
  }
  if (!samples.empty()) {
    h << "<h2>Samples at each evaluation (the same held-out captions and seed)</h2><table class='grid'>";
    for (const auto& [step, sheet] : samples) {
      std::string bytes;
      try {
        bytes = read_file(metrics_jsonl.parent_path() / sheet);
      } catch (const Error&) {
      }
      h << "<tr><th style='text-align:left'>step " << step << "</th><td><img style='width:auto;height:auto' "
        << "alt='samples at step " << step << "' src='data:image/png;base64," << encode_base64(bytes)
        << "'></td></tr>";
    }
    h << "</table>";
  }
  h << "</body></html>\n";
  write_file_atomic(out, h.str());
}

}  // namespace mmlearn
