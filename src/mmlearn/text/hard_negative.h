// Hard negative captions for contrastive training, as NegCLIP makes them (Yuksekgonul et al., 2023, "When and
// why vision-language models behave like bags-of-words"): the caption's own words, rearranged so that it no
// longer says what the picture shows. A model can tell the two apart only by reading where things are and
// which attribute goes with which object, which a batch of unrelated captions never asks of it.
//
//   hard_negative("a red circle on the left", {})                       -> "a red circle on the right"
//   hard_negative("a red circle and a blue square", {{"red", "blue"}})  -> "a blue circle and a red square"
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace mmlearn::text {

// The caption with every place word turned to its opposite (left/right, top/bottom, above/below, over/under,
// upper/lower); without one, with the first two different words of one kind swapped (each of `kinds` is a
// list of words that can stand in for each other, e.g. colours); without either, nothing. Words are matched
// whole and without regard to case.
std::optional<std::string> hard_negative(const std::string& caption,
                                         const std::vector<std::vector<std::string>>& kinds);

}  // namespace mmlearn::text
