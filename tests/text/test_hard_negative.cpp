// NegCLIP's hard negatives: the caption's words rearranged so that it says something else.
#include <gtest/gtest.h>

#include "mmlearn/text/hard_negative.h"

namespace mmlearn::text {
namespace {

const std::vector<std::vector<std::string>> kShapesKinds = {
    {"red", "green", "blue"}, {"circle", "square", "star"}, {"small", "large"}};

TEST(HardNegative, PlaceWordsTurnToTheirOpposites) {
  EXPECT_EQ(hard_negative("a red circle on the left", kShapesKinds), "a red circle on the right");
  EXPECT_EQ(hard_negative("a large star at the top left", kShapesKinds), "a large star at the bottom right");
  EXPECT_EQ(hard_negative("a red circle above a blue square", kShapesKinds),
            "a red circle below a blue square");
  EXPECT_EQ(hard_negative("Left of the lamp, under a shelf", {}), "Right of the lamp, over a shelf");
  // Whole words only.
  EXPECT_EQ(hard_negative("a leftover topaz", {}), std::nullopt);
}

TEST(HardNegative, WithoutAPlaceTwoAttributesOfOneKindSwap) {
  // The first word with a different word of its kind later on: here the sizes.
  EXPECT_EQ(hard_negative("a small red circle and a large blue square", kShapesKinds),
            "a large red circle and a small blue square");
  EXPECT_EQ(hard_negative("two objects: a red circle, a blue star", kShapesKinds),
            "two objects: a blue circle, a red star");
  EXPECT_EQ(hard_negative("a RED circle and a Blue square", kShapesKinds), "a Blue circle and a Red square");
  // Words of one kind that are the same say nothing new when swapped.
  EXPECT_EQ(hard_negative("a red circle and a red square", {{"red", "blue"}}), std::nullopt);
}

TEST(HardNegative, ACaptionWithNothingToRearrangeHasNone) {
  EXPECT_EQ(hard_negative("a small red circle", kShapesKinds), std::nullopt);
  EXPECT_EQ(hard_negative("a red circle and a blue square", {}), std::nullopt);
  EXPECT_EQ(hard_negative("", kShapesKinds), std::nullopt);
}

}  // namespace
}  // namespace mmlearn::text
