// What a server has done, in Prometheus' text exposition format (GET /metrics): requests by route and status,
// their latency as a histogram by route, the inputs of each batch a model worker ran, and gauges read when
// scraped (queue depths, resident memory).
//
//   mmlearn::serve::Metrics m;
//   m.request("/v1/search", 200, 0.012);
//   std::string text = m.prometheus({{"mmlearn_queue_depth{model=\"clip\"}", 0}});
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace mmlearn::serve {

class Metrics {
 public:
  void request(const std::string& route, int status, double seconds);
  void batch(const std::string& model, int64_t inputs);
  // The text format; `gauges` are "name{labels}" → value lines added as they are.
  std::string prometheus(const std::vector<std::pair<std::string, double>>& gauges = {}) const;

 private:
  struct Histogram {
    std::vector<int64_t> counts;  // one per bucket bound, cumulative when written
    double sum = 0;
    int64_t count = 0;
  };
  static void observe(Histogram& h, const std::vector<double>& bounds, double value);
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, Histogram> latency_, batches_;
};

}  // namespace mmlearn::serve
