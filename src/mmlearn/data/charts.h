// Bar and line charts for visual question answering: a few categories labelled A, B, C, ... with values 1 to
// 9 read against grid lines, drawn small enough for the shapes world's models (64 pixels by default), and
// questions about them with their answers: which bar is the tallest or the shortest, the value of one
// category, whether one bar is taller than another, whether a line rises or falls and where it peaks.
// `mmlearn data shapes --task vqa` mixes them with questions about scenes.
//
//   mmlearn::data::Rng rng(seed);
//   auto chart = mmlearn::data::random_chart(rng);
//   mmlearn::data::Image image = mmlearn::data::render_chart(chart, 64, rng);
//   for (const auto& q : mmlearn::data::chart_questions(chart, rng)) ...;  // {question, answer, type}
#pragma once

#include <string>
#include <vector>

#include "mmlearn/data/image_io.h"
#include "mmlearn/data/synthetic.h"

namespace mmlearn::data {

struct Chart {
  enum class Kind { bar, line };
  Kind kind = Kind::bar;
  std::vector<int> values;  // one a category, 1..9; category i is labelled 'A' + i
  int color = 0;            // index into the chart palette
};

// 3 to 5 categories. A bar chart has one tallest and one shortest bar; a line rises or falls by at least 3
// from its first value to its last, and peaks at one category.
Chart random_chart(Rng& rng);
// A light background with faint noise, grid lines at every value, the bars or the line, and the labels.
Image render_chart(const Chart& chart, int size, Rng& rng);

struct ChartQuestion {
  std::string question, answer, type;  // type: chart_extreme, chart_value, chart_compare, chart_trend
};
// Two to four questions about the chart, each with its one right answer.
std::vector<ChartQuestion> chart_questions(const Chart& chart, Rng& rng);

std::string category_label(int index);  // "A", "B", ...
// What the chart shows, every value read: "a bar chart: A is 3, B is 7, C is 5".
std::string chart_caption(const Chart& chart);

}  // namespace mmlearn::data
