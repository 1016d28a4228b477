// BLEU-4 and CIDEr-D on captions whose values are worked out by hand from the COCO caption evaluation's
// definitions (the arithmetic is in the comments).
#include <gtest/gtest.h>

#include <cmath>

#include "../test_util.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/eval/caption_metrics.h"

namespace mmlearn {
namespace {

TEST(CaptionMetrics, Bleu4OfHandWorkedCases) {
  // The same words: every precision 1, no brevity penalty. Case and punctuation do not count.
  EXPECT_NEAR(bleu4({"A red circle, on the left."}, {{"a red circle on the left"}}), 1.0, 1e-9);
  // "the cat sat on the mat" against "the cat is on the mat": 5/6 words, 3/5 bigrams, 1/4 trigrams and 0/3
  // 4-grams match; COCO's 1e-15 stands in for the zero.
  EXPECT_NEAR(bleu4({"the cat sat on the mat"}, {{"the cat is on the mat"}}),
              std::pow(5.0 / 6 * 3.0 / 5 * 1.0 / 4 * 1e-15 / 3, 0.25), 1e-12);
  // Half the reference's length, every n-gram right: only the brevity penalty, exp(1 - 8 / 4).
  EXPECT_NEAR(bleu4({"a large red circle"}, {{"a large red circle on the left side"}}), std::exp(-1.0), 1e-6);
  // The reference closest in length sets the penalty: 3 words against a caption of 4, none.
  EXPECT_NEAR(bleu4({"a large red circle"}, {{"a large red circle on the left side too", "a large red"}}),
              1.0, 1e-6);
  // Over a corpus, counts add up before the ratios: (4 + 0) / (4 + 2) words for two captions, not a mean.
  const double two = bleu4({"a large red circle", "blue star"}, {{"a large red circle"}, {"green square"}});
  EXPECT_NEAR(two, std::pow(4.0 / 6 * 3.0 / 4 * 2.0 / 2 * 1.0 / 1, 0.25), 1e-6);
}

TEST(CaptionMetrics, CiderDOfHandWorkedCases) {
  // Two images, each caption its one reference: every n-gram occurs for one image of two, weight ln 2.
  // Unigram and bigram cosines are 1, there are no 3- and 4-grams: 10 x (1 + 1 + 0 + 0) / 4 = 5.
  EXPECT_NEAR(cider_d({"a b", "c d"}, {{"a b"}, {"c d"}}), 5.0, 1e-9);
  // "a c" for "a b": unigrams {a, c} against {a, b}, weights ln 2 each: ln²2 / (√2 ln 2)² = 1/2; no bigram
  // in common: 10 x 0.5 / 4 = 1.25. With the other image's 5: a mean of 3.125.
  EXPECT_NEAR(cider_d({"a c", "c d"}, {{"a b"}, {"c d"}}), 3.125, 1e-9);
  // Two references, and "c" now in both images' references (idf ln 2 - ln 2 = 0). Image 1, "a b" against
  // "a b": cosines 1 and 1; against "a c" ({a: ln 2, c: 0}): unigrams ln²2 / (√2 ln 2 x ln 2) = 1/√2,
  // bigrams 0. Summed over the references and averaged over n: 10 x (2 + 1/√2) / 4 / 2. Image 2, "c d"
  // twice over, the same caption: 10 x 4 / 4 / 2 = 5.
  EXPECT_NEAR(cider_d({"a b", "c d"}, {{"a b", "a c"}, {"c d", "c d"}}),
              (10 * (2 + 1 / std::sqrt(2.0)) / 8 + 5) / 2, 1e-9);
  EXPECT_NE(test::error_of([] { cider_d({"a"}, {{}}); }).find("no reference"), std::string::npos);
  EXPECT_NE(test::error_of([] { bleu4({"a", "b"}, {{"a"}}); }).find("2 captions but 1"), std::string::npos);
}

TEST(CaptionMetrics, AGroundedCaptionNamesEveryObjectAndInventsNone) {
  const auto scene = nlohmann::json::parse(
      R"([{"color": "red", "shape": "star", "size": "large"}, {"color": "blue", "shape": "circle"},
          {"color": "blue", "shape": "circle"}])");
  EXPECT_TRUE(
      grounded_caption("a large striped red star, a small blue circle and a large blue circle", scene));
  EXPECT_TRUE(grounded_caption("three objects: a blue circle, a blue circle and a red star", scene));
  EXPECT_FALSE(grounded_caption("a large red star and a small blue circle", scene));  // one circle missing
  EXPECT_FALSE(
      grounded_caption("a red star, a blue circle, a blue circle and a green square", scene));  // invented
  EXPECT_FALSE(grounded_caption("a green star, a blue circle and a blue circle", scene));  // wrong colour
  EXPECT_FALSE(grounded_caption("a large star, a blue circle and a blue circle", scene));  // colour not said
  EXPECT_FALSE(grounded_caption("a red star", nlohmann::json::parse(R"([{"shape": "star"}])")));

  // Every caption the shapes world writes is grounded in its own scene, and none in the next record's.
  const auto dir = test::temp_dir("shapes");
  data::generate_shapes(dir, {.n_train = 200, .n_test = 0, .seed = 4, .image_size = 32});
  const auto records = data::read_manifest(dir / "train.jsonl").records;
  int elsewhere = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i].json;
    EXPECT_TRUE(grounded_caption(r["text"], r["objects"])) << r.dump();
    elsewhere += grounded_caption(r["text"], records[(i + 1) % records.size()].json["objects"]);
  }
  EXPECT_LT(elsewhere, 10);
}

}  // namespace
}  // namespace mmlearn
