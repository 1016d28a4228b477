// Caption metrics as the COCO caption evaluation computes them, over captions normalized as transcripts are
// (eval/wer.h: lower case, punctuation removed) and split into words:
//   BLEU-4   corpus-level: clipped n-gram precisions for n = 1..4 summed over all captions, their geometric
//            mean, and the brevity penalty against the reference length closest to each caption's.
//   CIDEr-D  per image, the tf-idf n-gram vectors (n = 1..4; idf from how many images' references hold the
//            n-gram) of the caption against each reference: cosine similarity with the caption's weights
//            clipped to the reference's, a Gaussian penalty on the length difference (sigma 6), averaged
//            over n and references and scaled by 10; then the mean over images.
// And, for captions of shapes scenes, whether a caption is grounded: it names every object by its colour and
// shape, and no object the scene does not hold.
//
//   double b = mmlearn::bleu4({"a red circle"}, {{"a red circle", "one red circle"}});  // 1
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmlearn {

// hypotheses[i] is the caption written for image i, references[i] what people (or the generator) wrote.
double bleu4(const std::vector<std::string>& hypotheses,
             const std::vector<std::vector<std::string>>& references);
double cider_d(const std::vector<std::string>& hypotheses,
               const std::vector<std::vector<std::string>>& references);

// The caption's (colour, shape) mentions, a colour word right before a shape word ("a small striped red
// star"), are, as a multiset, those of `objects` (a shapes record's "objects": [{"color", "shape", ...}]).
// A shape named without its colour is not grounded.
bool grounded_caption(const std::string& caption, const nlohmann::json& objects);

}  // namespace mmlearn
