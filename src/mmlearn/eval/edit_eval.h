// Judging edits: a generator edits the sources of held-out (source, instruction, target) triplets and an
// independently trained CLIP reads each result object by object (eval/object_judge.h).
//   instruct  an instruction editor (InstructPix2Pix) edits with the instruction ("make the circle red").
//   sdedit    a text-to-image generator redraws the source by SDEdit with a caption of the target scene
//             ("a small red circle and a large blue square"; captions name no place, so a move is not asked).
// An edit is right when the objects found are the target's, one for one: the same colour, shape and size,
// each within a tenth of the picture's side of where the target has it (a move goes a quarter). So the change
// must be made and everything else kept.
//   {"edit": {"instruct" | "sdedit": share}, "n",
//    "by_kind": {"color" | "shape" | "size" | "move" | "remove" | "add": {"right", "n"}},
//    "judge_on_real": the share of the target pictures read as right (the judge's own accuracy),
//    "unchanged": the share of the sources read as right (what returning the source scores), ...}
//
//   auto m = mmlearn::evaluate_edits(editor, judge, "edit/test.jsonl", "edit/classes.json", {});
//   m["edit"]["instruct"], m["by_kind"]["move"]
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "mmlearn/core/precision.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/models/generator.h"

namespace mmlearn {

struct EditEvalOptions {
  GenerateOptions generate;              // batch k of sources edits with seed + k
  double strength = 0.6;                 // sdedit
  std::optional<double> image_guidance;  // instruct; unset: the model's
  int64_t limit = 0;                     // the first N triplets; 0: all
  int64_t batch_size = 16;
  std::filesystem::path samples;          // when set: every result, sheet.png and edits.json there
  Precision precision = Precision::fp32;  // the judge's
  std::function<void(int64_t done, int64_t total)> progress;
};

nlohmann::json evaluate_edits(GeneratorBundle& g, ClipBundle& judge, const std::filesystem::path& manifest,
                              const std::filesystem::path& classes, const EditEvalOptions& options);

}  // namespace mmlearn
