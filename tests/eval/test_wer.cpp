#include <gtest/gtest.h>

#include "mmlearn/eval/wer.h"

using namespace mmlearn;

TEST(ErrorRates, CountSubstitutionsDeletionsAndInsertions) {
  EXPECT_EQ(word_error_rate({"a red circle"}, {"a red circle"}).errors, 0);
  auto sub = word_error_rate({"a red circle"}, {"a blue circle"});
  EXPECT_EQ(sub.errors, 1);
  EXPECT_EQ(sub.reference_length, 3);
  EXPECT_NEAR(sub.rate(), 1.0 / 3, 1e-12);
  EXPECT_EQ(word_error_rate({"a red circle"}, {"a circle"}).errors, 1);               // deletion
  EXPECT_EQ(word_error_rate({"a red circle"}, {"a red red circle left"}).errors, 2);  // insertions
  EXPECT_EQ(word_error_rate({"a red circle"}, {""}).errors, 3);
  // Summed over the corpus, not averaged per sentence.
  auto corpus = word_error_rate({"a b c d", "e"}, {"a b c d", "f"});
  EXPECT_EQ(corpus.errors, 1);
  EXPECT_EQ(corpus.reference_length, 5);
  EXPECT_EQ(char_error_rate({"star"}, {"stars"}).errors, 1);
  EXPECT_EQ(char_error_rate({"star"}, {"stars"}).reference_length, 4);
  EXPECT_THROW(word_error_rate({"a"}, {}), std::exception);
}

TEST(ErrorRates, NormalizeCaseAndPunctuation) {
  EXPECT_EQ(normalize_transcript("  A Red, circle!  Left of   the STAR. "), "a red circle left of the star");
  EXPECT_EQ(normalize_transcript("don't"), "don't");
  EXPECT_EQ(word_error_rate({"A red circle."}, {"a red circle"}).errors, 0);
}
