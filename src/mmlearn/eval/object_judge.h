// A CLIP that reads shapes-world pictures object by object, as GenEval reads a generated picture: the objects
// are found first (eval/scene_objects.h), then each is classified alone, zero-shot over every filling of the
// classes file's template ("a {size} {color} {shape}"), marginalized per attribute (eval/clip_eval.h). A
// judge reading whole pictures cannot tell "a red circle and a blue square" from "a blue circle and a red
// square", nor where either is. Generator and edit judging (generator_eval.h, edit_eval.h) share it.
//
//   mmlearn::ObjectJudge judge(clip, mmlearn::read_zero_shot_classes("shapes/classes.json"),
//   Precision::fp32); for (const auto& r : judge.read(pictures_u8)) r.objects[0].x,
//   r.values[0][judge.attribute("color")];
#pragma once

#include <string>
#include <vector>

#include "mmlearn/core/precision.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/eval/scene_objects.h"
#include "mmlearn/models/clip_pretrained.h"

namespace mmlearn {

// The objects found in one picture (largest first) and, for each, the index of each attribute's value in
// the classes file.
struct ObjectReading {
  std::vector<SceneObject> objects;
  std::vector<std::vector<int64_t>> values;  // [object][attribute]
};

class ObjectJudge {
 public:
  ObjectJudge(ClipBundle& clip, ZeroShotClasses classes, Precision precision);

  const ZeroShotClasses& classes() const { return classes_; }
  // The index of an attribute ("color") in classes().attributes, or -1.
  int64_t attribute(const std::string& name) const;
  // The index of `value` among the attribute's values, or -1.
  int64_t value(int64_t attribute, const std::string& value) const;

  // L2-normalized embeddings of texts, and of pictures (uint8 [N, 3, H, W], resized to the CLIP's side).
  torch::Tensor texts(const std::vector<std::string>& texts) const;
  torch::Tensor images(const torch::Tensor& images_u8) const;
  // What the judge reads in each picture (uint8 [N, 3, H, W]).
  std::vector<ObjectReading> read(const torch::Tensor& pictures_u8) const;

 private:
  ClipBundle& clip_;
  ZeroShotClasses classes_;
  Precision precision_;
};

// The share of verdicts that hold (0 for none), as the generator and edit judgings report them.
double share(const std::vector<bool>& verdicts);

// uint8 images [N, 3, H, W] at side x side (bilinear), or as they are.
torch::Tensor resized(const torch::Tensor& images_u8, int64_t side);

}  // namespace mmlearn
