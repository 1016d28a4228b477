// Judging what a text-to-image generator drew: images are generated for held-out captions and an
// independently trained image–text model (a CLIP, the "judge") reads them back, object by object, as GenEval
// does: the objects of each picture are found (eval/scene_objects.h: saturated objects on the shapes world's
// dark background) and each is classified alone, zero-shot over every "a {size} {color} {shape}" of the
// classes file, marginalized per attribute (eval/clip_eval.h).
//   single   prompts of one object (records with "labels"): is the largest object found the colour, shape and
//            size asked for? A picture where no object is found is wrong in each. "one_object": the share of
//            pictures with exactly one object.
//   pairs    prompts of two objects in a relation ("a red circle left of a blue square"): "both_objects",
//   both
//            found, each with its own colour and shape (attribute binding); "relation", both found and the
//            first where the caption puts it, by the data's own rule (the axis where the centres differ
//            most); "two_objects", exactly two objects in the picture.
//   clip_score   100 x the mean cosine of a whole picture and its prompt in the judge's space, at least 0
//                (CLIPScore as torchmetrics reports it).
//   frechet  the Fréchet distance between the judge's embeddings of the generated images and of the held-out
//            images of the same records (FID's formula in the judge's embedding space).
// The same judging of the real held-out images ("judge_on_real") says how far the judge itself can be
// trusted; of those images passed through the generator's autoencoder and back ("judge_on_autoencoded"), how
// much the autoencoder alone loses.
//
//   auto metrics = mmlearn::evaluate_generator(generator, judge, "shapes/test.jsonl", "shapes/classes.json",
//                                              {.generate = {.steps = 25, .guidance = 3}});
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
