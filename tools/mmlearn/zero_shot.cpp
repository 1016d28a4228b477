#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/models/clip_pixels.h"
#include "model_args.h"

namespace mmlearn::cli {
namespace {

std::vector<std::string> split_labels(const std::string& list) {
  std::vector<std::string> labels;
  for (size_t start = 0; start <= list.size();) {
    const size_t end = std::min(list.find(',', start), list.size());
    std::string label = list.substr(start, end - start);
    label.erase(0, label.find_first_not_of(' '));
    label.erase(label.find_last_not_of(' ') + 1);
    if (!label.empty()) labels.push_back(label);
    start = end + 1;
  }
  return labels;
}

// The classes to score: a classes.json, one unnamed list for "{}", or named lists for "{attribute}" slots.
ZeroShotClasses zero_shot_classes(const std::vector<std::string>& lists, std::string template_text,
                                  const std::string& classes_file) {
  if (!classes_file.empty()) {
    if (!lists.empty() || !template_text.empty())
      throw UsageError("--classes already holds the template and labels: drop --labels and --template");
    return read_zero_shot_classes(classes_file);
  }
  if (lists.empty()) throw UsageError("zero-shot needs --labels (or --classes)");
  ZeroShotClasses classes;
  const bool named = lists[0].find('=') != std::string::npos;
  if (!named) {
    if (lists.size() > 1) throw UsageError("give one --labels list, or name each: --labels color=red,green");
    if (template_text.empty()) template_text = "a photo of a {}.";
    const size_t slot = template_text.find("{}");
    if (slot == std::string::npos) throw UsageError("--template must contain {} where the label goes");
    classes.template_text = template_text.replace(slot, 2, "{label}");
    classes.attributes.emplace_back("label", split_labels(lists[0]));
  } else {
    if (template_text.empty())
      throw UsageError("named --labels need a --template with their {attribute} slots");
    classes.template_text = template_text;
    for (const auto& list : lists) {
      const size_t eq = list.find('=');
      if (eq == std::string::npos) throw UsageError("--labels \"" + list + "\": expected attribute=a,b,...");
      const std::string name = list.substr(0, eq);
      if (template_text.find("{" + name + "}") == std::string::npos)
        throw UsageError("--template has no slot {" + name + "} for --labels " + name + "=...");
      classes.attributes.emplace_back(name, split_labels(list.substr(eq + 1)));
    }
  }
  for (const auto& [name, values] : classes.attributes)
    if (values.size() < 2)
      throw UsageError("--labels " + name + ": needs at least two comma-separated names");
  return classes;
}

}  // namespace

void add_zero_shot(CLI::App& app) {
  auto* cmd = app.add_subcommand("zero-shot", "classify images against labels written as text prompts");
  struct Args {
    ModelArgs model;
    std::vector<std::string> images, labels;
    std::string template_text, classes, precision = "fp32";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--image", a->images, "image file (repeatable)")->required();
  cmd->add_option("--labels", a->labels,
                  "comma-separated class names (\"cat,dog,bird\"), or per attribute \"color=red,green\" "
                  "(repeatable; the template names the attributes: \"a {size} {color} {shape}\")");
  cmd->add_option("--template", a->template_text,
                  "prompt with {} (or {attribute}) where the label goes (default \"a photo of a {}.\")");
  cmd->add_option("--classes", a->classes,
                  "a classes.json (template and attributes, as `data shapes` writes) instead of --labels");
  cmd->add_option("--precision", a->precision, "fp32 (exact) or bf16")->capture_default_str();
  cmd->add_flag("--json", a->json,
                "JSON on stdout: [{\"image\", \"label\", \"probabilities\": {label: p}}], or with attributes "
                "{\"image\", \"labels\": {attribute: label}, \"probabilities\": {attribute: {label: p}}}");
  cmd->callback([a] {
    const ZeroShotClasses classes = zero_shot_classes(a->labels, a->template_text, a->classes);
    const bool named = classes.attributes.size() > 1 || classes.attributes[0].first != "label";
    const Precision precision = parse_precision(a->precision);
    auto model = open_model(a->model);
    ClipBundle& clip = need<ClipBundle>(*model, "zero-shot", "an image–text (CLIP) model");
    std::vector<torch::Tensor> pixels;
    for (const auto& p : a->images) pixels.push_back(load_clip_pixels(clip.model->config, p));
    const auto probabilities =
        zero_shot_probabilities(clip.model, clip.tokenizer, classes,
                                embed_pixels(clip.model, torch::stack(pixels), precision), precision);

    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (size_t i = 0; i < a->images.size(); ++i) {
      nlohmann::ordered_json labels = nlohmann::ordered_json::object(),
                             probs = nlohmann::ordered_json::object();
      for (size_t k = 0; k < classes.attributes.size(); ++k) {
        const auto& [attribute, values] = classes.attributes[k];
        auto row = probabilities[k][static_cast<int64_t>(i)];
        nlohmann::ordered_json p = nlohmann::ordered_json::object();
        for (size_t v = 0; v < values.size(); ++v) p[values[v]] = row[static_cast<int64_t>(v)].item<double>();
        labels[attribute] = values[static_cast<size_t>(row.argmax().item<int64_t>())];
        probs[attribute] = p;
      }
      if (named)
        out.push_back({{"image", a->images[i]}, {"labels", labels}, {"probabilities", probs}});
      else
        out.push_back(
            {{"image", a->images[i]}, {"label", labels["label"]}, {"probabilities", probs["label"]}});
    }
    if (a->json) {
      std::cout << out.dump() << "\n";
      return;
    }
    for (size_t i = 0; i < a->images.size(); ++i) {
      std::cout << a->images[i] << "\n";
      for (size_t k = 0; k < classes.attributes.size(); ++k) {
        const auto& [attribute, values] = classes.attributes[k];
        if (named) std::cout << "  " << attribute << ":\n";
        std::vector<std::pair<double, std::string>> ranked;
        for (size_t v = 0; v < values.size(); ++v)
          ranked.emplace_back(
              probabilities[k][static_cast<int64_t>(i)][static_cast<int64_t>(v)].item<double>(), values[v]);
        std::sort(ranked.rbegin(), ranked.rend());
        for (const auto& [q, label] : ranked) std::printf("  %6.2f%%  %s\n", 100 * q, label.c_str());
      }
    }
  });
}

}  // namespace mmlearn::cli
