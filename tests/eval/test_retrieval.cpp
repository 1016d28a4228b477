#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mmlearn/eval/clip_eval.h"

using namespace mmlearn;

TEST(Retrieval, PerfectAndReversedRankings) {
  auto e = torch::eye(20);
  std::vector<std::string> texts;
  for (int i = 0; i < 20; ++i) texts.push_back("t" + std::to_string(i));
  auto perfect = retrieval_metrics(e, e, texts);
  EXPECT_DOUBLE_EQ(perfect["image_to_text"]["R@1"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(perfect["text_to_image"]["R@1"].get<double>(), 1.0);
  // Image i = e_i; its own text scores 0.5 while ten other texts score 0.9: rank 11, a miss even at R@10.
  auto img = torch::zeros({20, 40}), txt = torch::zeros({20, 40});
  for (int i = 0; i < 20; ++i) {
    img[i][i] = 1;
    txt[i][i] = 0.5;
    for (int k = 1; k <= 10; ++k) txt[(i + k) % 20][i] = 0.9;
  }
  auto m = retrieval_metrics(img, txt, texts);
  EXPECT_DOUBLE_EQ(m["image_to_text"]["R@1"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(m["image_to_text"]["R@10"].get<double>(), 0.0);
  EXPECT_EQ(m["n"].get<int64_t>(), 20);
}

TEST(Retrieval, IdenticalCaptionsCountAsHits) {
  // Two images share one caption: retrieving either one for that caption is correct.
  auto img = torch::tensor({{1.0, 0.0}, {0.99, 0.14}, {0.0, 1.0}});
  auto txt = torch::tensor({{1.0, 0.0}, {1.0, 0.0}, {0.0, 1.0}});
  auto m = retrieval_metrics(img, txt, {"a red circle", "a red circle", "a blue square"});
  EXPECT_DOUBLE_EQ(m["text_to_image"]["R@1"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(m["image_to_text"]["R@1"].get<double>(), 1.0);
  auto strict = retrieval_metrics(img, txt, {"a red circle", "a red circle.", "a blue square"});
  EXPECT_LT(strict["text_to_image"]["R@1"].get<double>(), 1.0);
}
