#include "mmlearn/models/registry.h"

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/models/composed.h"

namespace mmlearn {
namespace fs = std::filesystem;

const std::vector<ModelFamily>& model_families() {
  static const std::vector<ModelFamily> families = {
      clip_family(),     clap_family(),      whisper_family(), fusion_classifier_family(),
      composed_family(), captioner_family(), vqa_family(),     generator_family()};
  return families;
}

const ModelFamily& family_of_preset(const std::string& preset) {
  std::vector<std::string> all;
  for (const auto& f : model_families())
    for (const auto& p : f.presets) {
      if (p == preset) return f;
      all.push_back(p);
    }
  throw UsageError(
      str_cat("unknown preset \"", preset, "\" (presets: ", join(all), "; `mmlearn models` describes them)"));
}

const ModelFamily& family_of_task(const std::string& task) {
  std::vector<std::string> all;
  for (const auto& f : model_families()) {
    if (f.task == task) return f;
    all.push_back(f.task);
  }
  throw UsageError(str_cat("unknown task \"", task, "\" (tasks: ", join(all), ")"));
}

const ModelFamily& family_of_type(const std::string& model_type) {
  for (const auto& f : model_families())
    if (f.model_type == model_type) return f;
  throw Error(str_cat("unknown model type \"", model_type, "\""));
}

const ModelFamily& family_of_model(const fs::path& path) {
  check(fs::exists(path), path.string(),
        ": no such file or directory (--model takes a model directory or a checkpoint file)");
  const fs::path config = path / "config.json";
  if (fs::is_directory(path) && fs::exists(config))  // what is wrong with it, rather than "not a model"
    check(read_json_file(config).is_object(), config.string(),
          ": expected a JSON object (a model's description)");
  std::vector<std::string> types;
  for (const auto& f : model_families()) {
    if (f.holds(path)) return f;
    types.push_back(f.model_type);
  }
  throw Error(str_cat(path.string(),
                      ": not a model mmlearn reads (expected a model directory with config.json, or a "
                      "checkpoint file: ",
                      join(types), ")"));
}

std::unique_ptr<Model> open_model(const fs::path& path, const OpenOptions& options) {
  return family_of_model(path).open(path, options);
}

void Model::cannot(const std::string& what) const {
  throw UsageError(str_cat("a ", family_.model_type, " model (", family_.summary, ") does not ", what));
}

torch::Tensor Model::embed(const std::string& modality, const std::vector<std::string>&, Precision) {
  if (embeds().empty()) cannot("embed inputs (it has no embedding space)");
  cannot(str_cat("embed ", modality, " (it embeds ", join(embeds()), ")"));
}

torch::Tensor Model::compose(const std::vector<std::string>& images, const std::vector<std::string>& texts,
                             Precision precision) {
  const auto modalities = embeds();
  if (std::find(modalities.begin(), modalities.end(), "image") == modalities.end() ||
      std::find(modalities.begin(), modalities.end(), "text") == modalities.end())
    cannot("compose an image with a text (it does not embed both)");
  torch::NoGradGuard no_grad;
  return arithmetic_query(embed("image", images, precision), embed("text", texts, precision));
}

nlohmann::json Model::evaluate(const EvalRequest&) { cannot("evaluate"); }
std::string Model::format_metrics(const nlohmann::json& metrics) const { return metrics.dump(); }
nlohmann::json Model::predict(const PredictRequest&) { cannot("predict labels"); }
std::vector<std::string> Model::describe(const std::vector<fs::path>&, const std::vector<std::string>&,
                                         const GenerationOptions&) {
  cannot("write text about images (it has no text decoder: train one with --task caption or --task vqa)");
}

}  // namespace mmlearn
