// `data shapes --task vqa`: every answer follows from the scene's objects or the chart's values, every
// question type occurs, the output is reproducible, and a bar chart's pixels show its values.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/data/charts.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/data/shapes.h"

namespace mmlearn::data {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

std::vector<Json> vqa_records(const fs::path& dir) {
  std::vector<Json> out;
  std::istringstream lines(read_file(dir / "train.jsonl"));
  for (std::string line; std::getline(lines, line);) out.push_back(Json::parse(line));
  return out;
}

// What the record's own objects or chart say the answer is, worked out from the question's words.
std::string expected_answer(const Json& r) {
  const std::string q = r["question"];
  std::smatch m;
  if (r.contains("chart")) {
    const auto values = r["chart"]["values"].get<std::vector<int>>();
    auto label = [&](const std::string& l) { return values[size_t(l[0] - 'A')]; };
    auto name = [](size_t i) { return std::string(1, char('A' + i)); };
    const auto top = size_t(std::max_element(values.begin(), values.end()) - values.begin());
    const auto low = size_t(std::min_element(values.begin(), values.end()) - values.begin());
    if (std::regex_match(q, m, std::regex("what is the value (of|at) ([A-E])\\?")))
      return std::to_string(label(m[2]));
    if (q == "which bar is the tallest?" || q == "where is the line highest?") return name(top);
    if (q == "which bar is the shortest?") return name(low);
    if (std::regex_match(q, m, std::regex("is ([A-E]) taller than ([A-E])\\?")))
      return label(m[1]) > label(m[2]) ? "yes" : "no";
    if (q == "is the trend rising or falling?") return values.back() > values.front() ? "rising" : "falling";
    return "?";
  }
  const auto& objects = r["objects"];
  auto count = [&](const std::string& key, const std::string& value) {
    return std::count_if(objects.begin(), objects.end(), [&](const Json& o) { return o[key] == value; });
  };
  auto find = [&](const std::string& key, const std::string& value) -> const Json& {
    for (const auto& o : objects)
      if (o[key] == value) return o;
    throw std::runtime_error("no object with " + key + " " + value);
  };
  if (std::regex_match(q, m, std::regex("what color is the (\\w+)\\?")) && count("shape", m[1]) == 1)
    return find("shape", m[1])["color"];
  if (std::regex_match(q, m, std::regex("what shape is the (\\w+) object\\?")) && count("color", m[1]) == 1)
    return find("color", m[1])["shape"];
  if (q == "how many objects are there?") return std::to_string(objects.size());
  if (std::regex_match(q, m, std::regex("how many (\\w+)s are there\\?")))
    return std::to_string(count("shape", m[1]));
  if (std::regex_match(q, m, std::regex("is there an? (\\w+) (\\w+)\\?"))) {
    const std::string color = m[1], shape = m[2];
    return std::any_of(objects.begin(), objects.end(),
                       [&](const Json& o) { return o["color"] == color && o["shape"] == shape; })
               ? "yes"
               : "no";
  }
  if (std::regex_match(q, m, std::regex("is the (\\w+) (left of|right of|above|below) the (\\w+)\\?"))) {
    const Json &a = find("shape", m[1]), &b = find("shape", m[3]);
    const double dx = a["x"].get<double>() - b["x"].get<double>(),
                 dy = a["y"].get<double>() - b["y"].get<double>();
    if (std::abs(std::abs(dx) - std::abs(dy)) < 0.002) return r["answer"];  // a tie the rounding may hide
    const std::string truth =
        std::abs(dx) >= std::abs(dy) ? (dx < 0 ? "left of" : "right of") : (dy < 0 ? "above" : "below");
    return m[2] == truth ? "yes" : "no";
  }
  return "?";
}

TEST(ShapesVqa, EveryAnswerFollowsFromTheSceneOrTheChart) {
  const fs::path dir = test::temp_dir("vqa");
  generate_shapes(dir, {.n_train = 600, .n_test = 0, .seed = 5, .task = ShapesTask::vqa});
  const auto records = vqa_records(dir);
  ASSERT_EQ(records.size(), 600u);
  std::map<std::string, int> types;
  int charts = 0;
  for (const auto& r : records) {
    EXPECT_EQ(r["answer"].get<std::string>(), expected_answer(r)) << r.dump();
    // The caption: a chart's every value, or a scene's every object by colour and shape.
    const std::string text = r["text"];
    if (r.contains("chart")) {
      std::string want = r["chart"]["kind"] == "bar" ? "a bar chart: " : "a line chart: ";
      const auto values = r["chart"]["values"].get<std::vector<int>>();
      for (size_t i = 0; i < values.size(); ++i)
        want += std::string(i ? ", " : "") + char('A' + i) + " is " + std::to_string(values[i]);
      EXPECT_EQ(text, want);
    } else {
      for (const auto& o : r["objects"])
        EXPECT_NE(text.find(o["color"].get<std::string>() + " " + o["shape"].get<std::string>()),
                  std::string::npos)
            << text << " lacks " << o.dump();
    }
    ++types[r["type"].get<std::string>()];
    charts += r.contains("chart");
    EXPECT_EQ(read_image(dir / r["image"].get<std::string>()).width, 64);
  }
  for (const char* type : {"color", "shape", "count", "spatial", "existence", "chart_value", "chart_extreme",
                           "chart_compare", "chart_trend"})
    EXPECT_GE(types[type], 10) << type;
  EXPECT_EQ(types.size(), 9u);
  EXPECT_GT(charts, 150);  // a third of 600, give or take
  EXPECT_LT(charts, 250);
  // Yes and no are balanced enough that answering one of them always is not a strategy.
  int yes = 0, no = 0;
  for (const auto& r : records) {
    yes += r["answer"] == "yes";
    no += r["answer"] == "no";
  }
  EXPECT_GT(std::min(yes, no) * 3, std::max(yes, no));

  const fs::path again = test::temp_dir("again");
  generate_shapes(again, {.n_train = 600, .n_test = 0, .seed = 5, .threads = 1, .task = ShapesTask::vqa});
  EXPECT_EQ(read_file(again / "train.jsonl"), read_file(dir / "train.jsonl"));
  EXPECT_EQ(read_file(again / "images/train/000007.png"), read_file(dir / "images/train/000007.png"));
}

// The saturated pixels of each column: the bars' colour (background, grid lines, axis and labels are grey).
std::vector<int> coloured_per_column(const Image& image) {
  std::vector<int> counts(size_t(image.width), 0);
  for (int y = 0; y < image.height; ++y)
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = image.rgb.data() + (size_t(y) * size_t(image.width) + size_t(x)) * 3;
      counts[size_t(x)] += std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]}) > 60;
    }
  return counts;
}

TEST(Charts, EachBarIsAsTallAsItsValue) {
  Rng rng(9);
  int bar_charts = 0;
  for (int i = 0; i < 40; ++i) {
    const Chart chart = random_chart(rng);
    if (chart.kind != Chart::Kind::bar) continue;
    ++bar_charts;
    const auto counts = coloured_per_column(render_chart(chart, 64, rng));
    // Bars are runs of coloured columns, left to right; each run's tallest column is its bar's height.
    std::vector<int> heights;
    for (size_t x = 0; x < counts.size(); ++x) {
      if (counts[x] == 0) continue;
      if (x == 0 || counts[x - 1] == 0) heights.push_back(0);
      heights.back() = std::max(heights.back(), counts[x]);
    }
    ASSERT_EQ(heights.size(), chart.values.size());
    // Heights in pixels are the values times one unit (about 5 pixels at 64), to within a pixel and a half.
    double hv = 0, vv = 0;
    for (size_t b = 0; b < heights.size(); ++b) {
      hv += heights[b] * chart.values[b];
      vv += chart.values[b] * chart.values[b];
    }
    const double unit = hv / vv;
    EXPECT_GT(unit, 4.0);
    for (size_t b = 0; b < heights.size(); ++b)
      EXPECT_NEAR(heights[b], chart.values[b] * unit, 1.5) << "bar " << b << " of " << chart.values.size();
  }
  EXPECT_GT(bar_charts, 5);
}

}  // namespace
}  // namespace mmlearn::data
