#include "mmlearn/eval/object_judge.h"

#include <torch/torch.h>

#include <algorithm>

namespace mmlearn {
namespace {

constexpr size_t kMostObjects = 8;  // read per picture: the largest

}  // namespace

torch::Tensor resized(const torch::Tensor& images_u8, int64_t side) {
  if (images_u8.size(2) == side && images_u8.size(3) == side) return images_u8;
  namespace F = torch::nn::functional;
  return F::interpolate(images_u8.to(torch::kFloat), F::InterpolateFuncOptions()
                                                         .size(std::vector<int64_t>{side, side})
                                                         .mode(torch::kBilinear)
                                                         .align_corners(false))
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8);
}

ObjectJudge::ObjectJudge(ClipBundle& clip, ZeroShotClasses classes, Precision precision)
    : clip_(clip), classes_(std::move(classes)), precision_(precision) {}

int64_t ObjectJudge::attribute(const std::string& name) const {
  for (size_t k = 0; k < classes_.attributes.size(); ++k)
    if (classes_.attributes[k].first == name) return static_cast<int64_t>(k);
  return -1;
}

int64_t ObjectJudge::value(int64_t attribute, const std::string& value) const {
  if (attribute < 0) return -1;
  const auto& values = classes_.attributes[static_cast<size_t>(attribute)].second;
  const auto it = std::find(values.begin(), values.end(), value);
  return it == values.end() ? -1 : it - values.begin();
}

torch::Tensor ObjectJudge::texts(const std::vector<std::string>& texts) const {
  return embed_texts(clip_.model,
                     tokenize_batch(clip_.tokenizer, texts, clip_.model->config.text.context_length),
                     precision_);
}

torch::Tensor ObjectJudge::images(const torch::Tensor& images_u8) const {
  return embed_images(clip_.model, resized(images_u8, clip_.model->config.vision.image_size), precision_);
}

std::vector<ObjectReading> ObjectJudge::read(const torch::Tensor& pictures) const {
  std::vector<ObjectReading> readings(static_cast<size_t>(pictures.size(0)));
  std::vector<torch::Tensor> lone;
  const auto hwc = pictures.permute({0, 2, 3, 1}).contiguous();
  for (int64_t i = 0; i < pictures.size(0); ++i) {
    const auto* p = hwc[i].data_ptr<uint8_t>();
    const data::Image image{static_cast<int>(hwc.size(2)), static_cast<int>(hwc.size(1)),
                            std::vector<uint8_t>(p, p + hwc[i].numel())};
    const FoundObjects found = find_objects(image, {.max_objects = kMostObjects});
    for (size_t k = 0; k < found.objects.size(); ++k) {
      data::Image one = alone(image, found, k);
      lone.push_back(torch::from_blob(one.rgb.data(), {image.height, image.width, 3}, torch::kUInt8)
                         .permute({2, 0, 1})
                         .clone());
    }
    readings[static_cast<size_t>(i)].objects = found.objects;
  }
  if (lone.empty()) return readings;
  const auto probabilities =
      zero_shot_probabilities(clip_.model, clip_.tokenizer, classes_, images(torch::stack(lone)), precision_);
  std::vector<torch::Tensor> best;
  for (const auto& p : probabilities) best.push_back(p.argmax(1));
  int64_t row = 0;
  for (ObjectReading& r : readings)
    for (size_t k = 0; k < r.objects.size(); ++k, ++row) {
      std::vector<int64_t> values;
      for (const auto& b : best) values.push_back(b[row].item<int64_t>());
      r.values.push_back(std::move(values));
    }
  return readings;
}

double share(const std::vector<bool>& verdicts) {
  const auto held = std::count(verdicts.begin(), verdicts.end(), true);
  return verdicts.empty() ? 0.0 : static_cast<double>(held) / static_cast<double>(verdicts.size());
}

}  // namespace mmlearn
