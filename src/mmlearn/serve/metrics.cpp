#include "mmlearn/serve/metrics.h"

#include <sstream>

namespace mmlearn::serve {
namespace {

const std::vector<double> kLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

void Metrics::observe(Histogram& h, const std::vector<double>& bounds, double value) {
  if (h.counts.empty()) h.counts.assign(bounds.size(), 0);
  for (size_t i = 0; i < bounds.size(); ++i)
    if (value <= bounds[i]) ++h.counts[i];
  h.sum += value;
  ++h.count;
}

void Metrics::request(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{route, status}];
  observe(latency_[route], kLatencyBounds, seconds);
}

void Metrics::batch(const std::string& model, int64_t inputs) {
  std::lock_guard<std::mutex> lock(mutex_);
  observe(batches_[model], kBatchBounds, static_cast<double>(inputs));
}

std::string Metrics::prometheus(const std::vector<std::pair<std::string, double>>& gauges) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  out << "# HELP mmlearn_requests_total HTTP requests answered, by route and status.\n"
      << "# TYPE mmlearn_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out << "mmlearn_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n
        << "\n";
  auto histogram = [&](const char* name, const char* help, const char* label,
                       const std::map<std::string, Histogram>& all, const std::vector<double>& bounds) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
    for (const auto& [value, h] : all) {
      for (size_t i = 0; i < bounds.size(); ++i)
        out << name << "_bucket{" << label << "=\"" << value << "\",le=\"" << number(bounds[i]) << "\"} "
            << h.counts[i] << "\n";
      out << name << "_bucket{" << label << "=\"" << value << "\",le=\"+Inf\"} " << h.count << "\n"
          << name << "_sum{" << label << "=\"" << value << "\"} " << number(h.sum) << "\n"
          << name << "_count{" << label << "=\"" << value << "\"} " << h.count << "\n";
    }
  };
  histogram("mmlearn_request_duration_seconds", "Time from request to response, by route.", "route", latency_,
            kLatencyBounds);
  histogram("mmlearn_batch_inputs", "Inputs embedded together in one forward pass, by model.", "model",
            batches_, kBatchBounds);
  std::string typed;  // a metric's TYPE line comes once, before its first sample
  for (const auto& [name, value] : gauges) {
    const std::string base = name.substr(0, name.find('{'));
    if (base != typed) out << "# TYPE " << base << " gauge\n";
    typed = base;
    out << name << " " << number(value) << "\n";
  }
  return out.str();
}

}  // namespace mmlearn::serve
