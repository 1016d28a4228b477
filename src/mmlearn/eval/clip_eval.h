// Evaluating an image–text model: retrieval recall@K in both directions and zero-shot classification per
// attribute. Zero-shot reads the class file a data set ships (shapes writes classes.json): a template such as
// "a {size} {color} {shape}" and the values of each attribute. Records carrying "labels" ({"color": "red",
// ...}) are the ones classified.
//
//   nlohmann::json metrics = mmlearn::evaluate_clip(model, tokenizer, dataset, "shapes/classes.json");
//   metrics["retrieval"]["text_to_image"]["R@10"], metrics["zero_shot"]["color"]
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmlearn/core/precision.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/models/clip.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/text/bpe.h"

namespace mmlearn {

// L2-normalized embeddings, computed in batches without autograd: of uint8 images (normalized here), of
// pixels already normalized (models/clip_pixels.h), of token ids.
torch::Tensor embed_pixels(Clip& model, const torch::Tensor& pixels, Precision precision = Precision::fp32,
                           int64_t batch_size = 256);
torch::Tensor embed_images(Clip& model, const torch::Tensor& images_u8, Precision precision = Precision::fp32,
                           int64_t batch_size = 256);
torch::Tensor embed_texts(Clip& model, const torch::Tensor& ids, Precision precision = Precision::fp32,
                          int64_t batch_size = 256);

// Embeddings of image files (read with the model's own preprocessing) or of texts: what a CLIP model's
// embed() answers. `modality`: "image" or "text".
torch::Tensor embed_clip_inputs(ClipBundle& clip, const std::string& modality,
                                const std::vector<std::string>& inputs,
                                Precision precision = Precision::fp32);

// R@K of each query row of `scores` [Q, C]: the share of queries whose best-ranked relevant candidate
// (relevant[q] lists them) ranks within the first K.
nlohmann::json recall_at_k(const torch::Tensor& scores, const std::vector<std::vector<int64_t>>& relevant,
                           const std::vector<int64_t>& ks);

// R@K both ways. A candidate counts as a hit when its text equals the query's own text: identical captions
// (common in synthetic and templated data) cannot be told apart by any model.
// `names` label the two directions (the audio–text model reports "audio_to_text", "text_to_audio").
nlohmann::json retrieval_metrics(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                                 const std::vector<std::string>& texts,
                                 const std::vector<int64_t>& ks = {1, 5, 10},
                                 const std::pair<std::string, std::string>& names = {"image_to_text",
                                                                                     "text_to_image"});
// What retrieval_metrics found, a line a direction: "image_to_text  R@1  67.6%  R@5  98.0%  R@10  99.1%".
std::string format_retrieval(const nlohmann::json& retrieval, std::initializer_list<const char*> directions);

struct ZeroShotClasses {
  std::string template_text;                                                 // "a {size} {color} {shape}"
  std::vector<std::pair<std::string, std::vector<std::string>>> attributes;  // in template order
};
ZeroShotClasses read_zero_shot_classes(const std::filesystem::path& path);
// Zero-shot probabilities [N, values] of each attribute, in `classes.attributes` order: the image is
// classified over every filling of the template (all combinations of values), and each attribute's
// probability is the sum over the fillings that carry that value. Marginalizing the joint softmax this way
// keeps a dominant attribute (colour) from drowning a subtler one (shape), which averaging prompt embeddings
// does not.
std::vector<torch::Tensor> zero_shot_probabilities(Clip& model, const text::BpeTokenizer& tokenizer,
                                                   const ZeroShotClasses& classes,
                                                   const torch::Tensor& image_embeds,
                                                   Precision precision = Precision::fp32);

nlohmann::json evaluate_clip(Clip& model, const text::BpeTokenizer& tokenizer,
                             const data::ImageTextDataset& ds, const std::filesystem::path& classes_path = {},
                             Precision precision = Precision::fp32);

}  // namespace mmlearn
