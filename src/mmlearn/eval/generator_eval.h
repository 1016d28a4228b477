// Judging what a text-to-image generator drew: images are generated for held-out captions and an
// independently trained image–text model (a CLIP, the "judge") reads them back.
//   single   prompts of one object (records with "labels"): is the drawn object's colour, shape and size the
//            one asked for? The judge classifies each image over every "a {size} {color} {shape}" of the
//            classes file and marginalizes per attribute, as zero-shot evaluation does (eval/clip_eval.h).
//   pairs    prompts of two objects in a relation ("a red circle left of a blue square"): are both objects
//            there, each with its own colour (attribute binding), and is their relation the one asked for?
//            The judge picks the pair among every unordered pair of distinct (colour, shape) objects ("a red
//            circle and a blue square", both orders averaged), then the relation among left of, right of,
//            above and below; "relation" counts the prompts where both are right.
//   clip_score   100 x the mean cosine of an image and its prompt in the judge's space, at least 0
//                (CLIPScore as torchmetrics reports it).
//   frechet  the Fréchet distance between the judge's embeddings of the generated images and of the held-out
//            images of the same records (FID's formula in the judge's embedding space).
// The same judging of the real held-out images ("judge_on_real") says how far the judge itself can be
// trusted.
//
//   auto metrics = mmlearn::evaluate_generator(generator, judge, "shapes/test.jsonl", "shapes/classes.json",
//                                              {.generate = {.steps = 25, .guidance = 5}});
//   metrics["single"]["color"], metrics["pairs"]["relation"], metrics["frechet"]
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "mmlearn/core/precision.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/models/generator.h"

namespace mmlearn {

struct GeneratorEvalOptions {
  GenerateOptions generate;               // sampler, steps, guidance; batch k of prompts draws with seed + k
  int64_t limit = 0;                      // at most this many prompts of each kind (single, pairs); 0: all
  int64_t batch_size = 16;                // prompts generated together
  std::filesystem::path samples;          // when set: every generated image, sheet.png and prompts.json there
  Precision precision = Precision::fp32;  // the judge's (generate.precision is the generator's)
  std::function<void(int64_t done, int64_t total)> progress;  // prompts generated
};

nlohmann::json evaluate_generator(GeneratorBundle& generator, ClipBundle& judge,
                                  const std::filesystem::path& manifest, const std::filesystem::path& classes,
                                  const GeneratorEvalOptions& options);

// The Fréchet distance between Gaussians fitted to two sets of embeddings [N, D] (rows: samples):
// |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), in double.
double frechet_distance(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace mmlearn
