#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/base64.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/eval/report.h"

using namespace mmlearn;
using nlohmann::json;

TEST(Report, HoldsCurvesResultsAndInlineImages) {
  auto dir = test::temp_dir("report");
  std::ofstream metrics(dir / "metrics.jsonl");
  for (int step = 10; step <= 50; step += 10)
    metrics << json{{"step", step}, {"loss", 5.0 / step}}.dump() << "\n";
  json eval = {{"retrieval",
                {{"image_to_text", {{"R@1", 0.25}, {"R@5", 0.5}, {"R@10", 0.75}}},
                 {"text_to_image", {{"R@1", 0.3}, {"R@5", 0.6}, {"R@10", 0.9}}}}},
               {"zero_shot", {{"color", 1.0}}}};
  metrics << json{{"step", 50}, {"eval", eval}}.dump() << "\n";
  metrics.close();
  data::Image image{2, 2, std::vector<uint8_t>(12, 200)};
  data::write_png(dir / "a.png", image);

  write_run_report(dir / "report.html", dir / "metrics.jsonl", eval,
                   {{"a <red> circle", {{dir / "a.png", "a red circle", 0.5}}}});
  const std::string html = read_file(dir / "report.html");
  EXPECT_NE(html.find("a &lt;red&gt; circle"), std::string::npos);               // escaped, not markup
  EXPECT_NE(html.find("data:image/png;base64,iVBORw0KGgo"), std::string::npos);  // the PNG signature, inline
  EXPECT_NE(html.find("90%"), std::string::npos);                                // text→image R@10
  EXPECT_NE(html.find("zero-shot color"), std::string::npos);
  // One loss point per metrics line with a loss: five points in the loss polyline.
  auto at = html.find("<polyline");
  ASSERT_NE(at, std::string::npos);
  auto points = html.substr(html.find("points='", at) + 8);
  points = points.substr(0, points.find('\''));
  EXPECT_EQ(std::count(points.begin(), points.end(), ','), 5);
}

// A run of another family: its own held-out numbers in the table, and the samples a generator drew at each
// evaluation, inline, in step order.
TEST(Report, ShowsAFamilysNumbersAndTheSamplesOfEachEvaluation) {
  auto dir = test::temp_dir("report-samples");
  data::write_png(dir / "s10.png", data::Image{2, 2, std::vector<uint8_t>(12, 10)});
  data::write_png(dir / "s20.png", data::Image{2, 2, std::vector<uint8_t>(12, 20)});
  std::ofstream metrics(dir / "metrics.jsonl");
  metrics << json{{"step", 10}, {"loss", 0.5}}.dump() << "\n"
          << json{{"step", 10}, {"eval", {{"psnr", 21.5}, {"samples", "s10.png"}}}}.dump() << "\n"
          << json{{"step", 20}, {"eval", {{"psnr", 23.25}, {"samples", "s20.png"}}}}.dump() << "\n";
  metrics.close();
  write_run_report(dir / "report.html", dir / "metrics.jsonl", {{"psnr", 23.25}, {"n", 8}}, {});
  const std::string html = read_file(dir / "report.html");
  EXPECT_NE(html.find(">psnr</td><td>23.25"), std::string::npos) << html;
  const auto first = html.find("samples at step 10"), second = html.find("samples at step 20");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_LT(first, second);
  auto inline_png = [&](const std::filesystem::path& file) {
    return html.find(encode_base64(read_file(file))) != std::string::npos;
  };
  EXPECT_TRUE(inline_png(dir / "s10.png"));
  EXPECT_TRUE(inline_png(dir / "s20.png"));
}
