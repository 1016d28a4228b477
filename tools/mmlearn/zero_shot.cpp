#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/clip_pixels.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_zero_shot(CLI::App& app) {
  auto* cmd = app.add_subcommand("zero-shot", "classify images against labels written as text prompts");
  struct Args {
    ModelArgs model;
    std::vector<std::string> images;
    std::string labels, template_text = "a photo of a {}.", precision = "fp32";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->images, "image file (repeatable)")->required();
  cmd->add_option("--labels", a->labels, "comma-separated class names, e.g. \"cat,dog,bird\"")->required();
  cmd->add_option("--template", a->template_text, "prompt with {} where the label goes")
      ->capture_default_str();
  cmd->add_option("--precision", a->precision, "fp32 (exact) or bf16")->capture_default_str();
  cmd->add_flag("--json", a->json,
                "JSON on stdout: [{\"image\": .., \"label\": .., \"probabilities\": {label: p, ..}}]");
  cmd->callback([a] {
    std::vector<std::string> labels, prompts;
    for (size_t start = 0; start <= a->labels.size();) {
      const size_t end = std::min(a->labels.find(',', start), a->labels.size());
      std::string label = a->labels.substr(start, end - start);
      label.erase(0, label.find_first_not_of(' '));
      label.erase(label.find_last_not_of(' ') + 1);
      if (!label.empty()) labels.push_back(label);
      start = end + 1;
    }
    if (labels.size() < 2) throw UsageError("--labels needs at least two comma-separated names");
    const size_t slot = a->template_text.find("{}");
    if (slot == std::string::npos) throw UsageError("--template must contain {} where the label goes");
    for (const auto& label : labels) prompts.push_back(std::string(a->template_text).replace(slot, 2, label));

    const Precision precision = parse_precision(a->precision);
    ClipBundle clip = open_model(a->model);
    std::vector<torch::Tensor> pixels;
    for (const auto& p : a->images) pixels.push_back(load_clip_pixels(clip.model->config, p));
    auto image_embeds = embed_pixels(clip.model, torch::stack(pixels), precision);
    auto text_embeds = embed_texts(
        clip.model, tokenize_batch(clip.tokenizer, prompts, clip.model->config.text.context_length),
        precision);
    c10::InferenceMode inference;
    auto scale = clip.model->logit_scale.exp().clamp_max(kMaxLogitScale);
    auto probs = torch::softmax(scale * torch::matmul(image_embeds, text_embeds.t()), 1);

    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (size_t i = 0; i < a->images.size(); ++i) {
      auto row = probs[static_cast<int64_t>(i)];
      nlohmann::ordered_json p = nlohmann::ordered_json::object();
      for (size_t k = 0; k < labels.size(); ++k) p[labels[k]] = row[static_cast<int64_t>(k)].item<double>();
      out.push_back({{"image", a->images[i]},
                     {"label", labels[static_cast<size_t>(row.argmax().item<int64_t>())]},
                     {"probabilities", p}});
    }
    if (a->json) {
      std::cout << out.dump() << "\n";
      return;
    }
    for (const auto& r : out) {
      std::cout << r["image"].get<std::string>() << ": " << r["label"].get<std::string>() << "\n";
      std::vector<std::pair<double, std::string>> ranked;
      for (const auto& [label, p] : r["probabilities"].items()) ranked.emplace_back(p.get<double>(), label);
      std::sort(ranked.rbegin(), ranked.rend());
      for (const auto& [p, label] : ranked) std::printf("  %6.2f%%  %s\n", 100 * p, label.c_str());
    }
  });
}

}  // namespace mmlearn::cli
