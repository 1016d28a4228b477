#include "mmlearn/data/charts.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "mmlearn/core/error.h"

namespace mmlearn::data {

namespace {

constexpr int kMaxValue = 9;

// Dark, saturated colours that stand out on the light background.
constexpr std::array<std::array<double, 3>, 5> kChartPalette = {{
    {200, 50, 50},
    {40, 140, 60},
    {50, 80, 200},
    {130, 60, 170},
    {220, 120, 20},
}};

// 5 x 7 glyphs of the category labels, a row a byte (bit 4 the leftmost pixel).
constexpr std::array<std::array<uint8_t, 7>, 5> kGlyphs = {{
    {0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001},  // A
    {0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110},  // B
    {0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110},  // C
    {0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110},  // D
    {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111},  // E
}};

// Blends `color` into pixel (x, y) by `alpha` in [0, 1]; pixels outside the image are ignored.
void blend(Image& image, int x, int y, const std::array<double, 3>& color, double alpha) {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height || alpha <= 0) return;
  uint8_t* p = image.rgb.data() + (size_t(y) * size_t(image.width) + size_t(x)) * 3;
  for (int c = 0; c < 3; ++c)
    p[c] = uint8_t(std::clamp(p[c] + (color[c] - p[c]) * std::min(alpha, 1.0) + 0.5, 0.0, 255.0));
}

// A filled rectangle [x0, x1) x [y0, y1) in pixel units, its edges antialiased by coverage.
void fill_rect(Image& image, double x0, double y0, double x1, double y1, const std::array<double, 3>& color) {
  for (int y = int(std::floor(y0)); y < int(std::ceil(y1)); ++y)
    for (int x = int(std::floor(x0)); x < int(std::ceil(x1)); ++x) {
      const double cover_x = std::min<double>(x + 1, x1) - std::max<double>(x, x0);
      const double cover_y = std::min<double>(y + 1, y1) - std::max<double>(y, y0);
      blend(image, x, y, color, std::max(0.0, cover_x) * std::max(0.0, cover_y));
    }
}

// A segment `width` pixels wide, antialiased by the distance of each pixel centre to it.
void draw_segment(Image& image, double ax, double ay, double bx, double by, double width,
                  const std::array<double, 3>& color) {
  const double dx = bx - ax, dy = by - ay, length2 = std::max(dx * dx + dy * dy, 1e-9), reach = width / 2 + 1;
  for (int y = int(std::floor(std::min(ay, by) - reach)); y <= int(std::ceil(std::max(ay, by) + reach)); ++y)
    for (int x = int(std::floor(std::min(ax, bx) - reach)); x <= int(std::ceil(std::max(ax, bx) + reach));
         ++x) {
      const double px = x + 0.5, py = y + 0.5;
      const double t = std::clamp(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0);
      const double d = std::hypot(px - (ax + t * dx), py - (ay + t * dy));
      blend(image, x, y, color, std::clamp(width / 2 + 0.5 - d, 0.0, 1.0));
    }
}

void draw_label(Image& image, int index, double centre_x, double top, int scale,
                const std::array<double, 3>& color) {
  const double left = std::round(centre_x - 2.5 * scale);
  for (int row = 0; row < 7; ++row)
    for (int col = 0; col < 5; ++col)
      if (kGlyphs[size_t(index)][size_t(row)] & (0b10000 >> col))
        fill_rect(image, left + col * scale, top + row * scale, left + (col + 1) * scale,
                  top + (row + 1) * scale, color);
}

int argmax(const std::vector<int>& v) { return int(std::max_element(v.begin(), v.end()) - v.begin()); }
int argmin(const std::vector<int>& v) { return int(std::min_element(v.begin(), v.end()) - v.begin()); }
bool unique_value(const std::vector<int>& v, int value) { return std::count(v.begin(), v.end(), value) == 1; }

}  // namespace

std::string category_label(int index) { return std::string(1, char('A' + index)); }

std::string chart_caption(const Chart& chart) {
  std::string out = chart.kind == Chart::Kind::bar ? "a bar chart: " : "a line chart: ";
  for (size_t i = 0; i < chart.values.size(); ++i)
    out += str_cat(i ? ", " : "", category_label(int(i)), " is ", chart.values[i]);
  return out;
}

Chart random_chart(Rng& rng) {
  Chart chart;
  chart.kind = rng.chance(0.5) ? Chart::Kind::bar : Chart::Kind::line;
  chart.color = rng.below(int(kChartPalette.size()));
  const int n = 3 + rng.below(3);
  for (;;) {  // drawn again until the questions have one answer each (a few tries at most)
    chart.values.clear();
    if (chart.kind == Chart::Kind::bar) {
      for (int i = 0; i < n; ++i) chart.values.push_back(1 + rng.below(kMaxValue));
      const auto& v = chart.values;
      if (unique_value(v, v[size_t(argmax(v))]) && unique_value(v, v[size_t(argmin(v))])) return chart;
    } else {
      // A trend of slope +-1 or +-2 a category, with steps of -1..1 around it.
      const int slope = (rng.chance(0.5) ? 1 : -1) * (1 + rng.below(2));
      int value = slope > 0 ? 1 + rng.below(3) : kMaxValue - rng.below(3);
      for (int i = 0; i < n; ++i) {
        chart.values.push_back(std::clamp(value, 1, kMaxValue));
        value += slope + rng.below(3) - 1;
      }
      const auto& v = chart.values;
      if (std::abs(v.back() - v.front()) >= 3 && unique_value(v, v[size_t(argmax(v))])) return chart;
    }
  }
}

Image render_chart(const Chart& chart, int size, Rng& rng) {
  check(size >= 32 && size <= 1024, "charts: image size must be in [32, 1024] (got ", size, ")");
  check(!chart.values.empty() && chart.values.size() <= kGlyphs.size(), "charts: 1 to ", kGlyphs.size(),
        " categories (got ", chart.values.size(), ")");
  Image image{size, size, std::vector<uint8_t>(size_t(size) * size_t(size) * 3)};
  const double paper = 236 + rng.below(16);
  for (size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = uint8_t(paper - 3 + rng.below(7));
  const int scale = std::max(1, size / 64);
  const double s = size / 64.0;
  // The plot: value v at height bottom - v * unit; the labels below it.
  const double left = 4 * s, right = size - 4 * s, top = 4 * s, bottom = size - 7 * scale - 5 * s;
  const double unit = (bottom - top) / kMaxValue;
  const std::array<double, 3> grid{200, 200, 200}, ink{60, 60, 60};
  for (int v = 1; v <= kMaxValue; ++v)
    fill_rect(image, left, bottom - v * unit - 0.5 * s, right, bottom - v * unit + 0.5 * s, grid);
  const auto n = int(chart.values.size());
  const double slot = (right - left) / n;
  const auto& color = kChartPalette[size_t(chart.color)];
  auto centre = [&](int i) { return left + (i + 0.5) * slot; };
  auto height = [&](int i) { return bottom - chart.values[size_t(i)] * unit; };
  if (chart.kind == Chart::Kind::bar) {
    for (int i = 0; i < n; ++i)
      fill_rect(image, centre(i) - 0.3 * slot, height(i), centre(i) + 0.3 * slot, bottom, color);
  } else {
    for (int i = 0; i + 1 < n; ++i)
      draw_segment(image, centre(i), height(i), centre(i + 1), height(i + 1), 1.5 * s, color);
    for (int i = 0; i < n; ++i)
      draw_segment(image, centre(i), height(i), centre(i), height(i), 3.5 * s, color);
  }
  fill_rect(image, left, bottom, right, bottom + s, ink);  // the axis
  for (int i = 0; i < n; ++i) draw_label(image, i, centre(i), bottom + 3 * s, scale, ink);
  return image;
}

std::vector<ChartQuestion> chart_questions(const Chart& chart, Rng& rng) {
  const auto& v = chart.values;
  const int n = int(v.size());
  std::vector<ChartQuestion> out;
  const int asked = rng.below(n);
  const std::string what = chart.kind == Chart::Kind::bar ? "of " : "at ";
  out.push_back({str_cat("what is the value ", what, category_label(asked), "?"),
                 std::to_string(v[size_t(asked)]), "chart_value"});
  if (chart.kind == Chart::Kind::bar) {
    if (rng.chance(0.5))
      out.push_back({"which bar is the tallest?", category_label(argmax(v)), "chart_extreme"});
    else
      out.push_back({"which bar is the shortest?", category_label(argmin(v)), "chart_extreme"});
    const int a = rng.below(n), b = (a + 1 + rng.below(n - 1)) % n;
    if (v[size_t(a)] != v[size_t(b)])
      out.push_back({str_cat("is ", category_label(a), " taller than ", category_label(b), "?"),
                     v[size_t(a)] > v[size_t(b)] ? "yes" : "no", "chart_compare"});
  } else {
    out.push_back(
        {"is the trend rising or falling?", v.back() > v.front() ? "rising" : "falling", "chart_trend"});
    out.push_back({"where is the line highest?", category_label(argmax(v)), "chart_extreme"});
  }
  return out;
}

}  // namespace mmlearn::data
