#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/train/clap_trainer.h"
#include "mmlearn/train/fusion_trainer.h"
#include "mmlearn/train/whisper_trainer.h"

namespace mmlearn::cli {

namespace {
void print_retrieval(const nlohmann::json& retrieval, std::initializer_list<const char*> directions) {
  for (const char* dir : directions) {
    const auto& m = retrieval[dir];
    std::printf("%-14s R@1 %5.1f%%  R@5 %5.1f%%  R@10 %5.1f%%\n", dir, 100 * m["R@1"].get<double>(),
                100 * m["R@5"].get<double>(), 100 * m["R@10"].get<double>());
  }
}
}  // namespace

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval",
      "evaluate a model on a manifest: retrieval R@K and zero-shot accuracy (CLIP), audio↔text R@K (CLAP), "
      "WER/CER (Whisper), accuracy and macro-F1 (classifiers)");
  struct Args {
    std::string model, data, classes, precision = "fp32";
    bool json = false, strict = false;
    int64_t limit = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "model directory")->required();
  cmd->add_option("--data", a->data, "manifest (.jsonl), or a directory holding test.jsonl")->required();
  cmd->add_option("--classes", a->classes,
                  "zero-shot classes file (default: classes.json beside the manifest)");
  cmd->add_option("--precision", a->precision, "fp32 (exact) or bf16")->capture_default_str();
  cmd->add_flag("--strict", a->strict, "fail on the first bad record instead of skipping it");
  cmd->add_flag("--json", a->json, "JSON on stdout");
  cmd->add_option("--limit", a->limit, "evaluate only the first N records (audio models)");
  auto hide = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--without", *hide, "classifiers: leave these modalities out of every record (comma list)")
      ->delimiter(',');
  cmd->callback([a, hide] {
    if (is_fusion_classifier(a->model)) {  // multimodal classification
      auto bundle = load_fusion_classifier(a->model);
      for (const auto& m : *hide)
        check(std::find(bundle.model->config.modalities.begin(), bundle.model->config.modalities.end(), m) !=
                  bundle.model->config.modalities.end(),
              "--without ", m, ": the model does not read ", m);
      const auto manifest = data::find_manifest(a->data, "test");
      const auto ds = load_classifier_data(bundle, manifest);
      check(a->strict ? ds.skipped == 0 : !ds.examples.empty(), manifest.string(),
            a->strict ? ": a record could not be read (see above)" : ": no usable records");
      auto metrics = evaluate_fusion_classifier(bundle, ds, {hide->begin(), hide->end()});
      metrics["skipped_records"] = ds.skipped;
      if (a->json) {
        std::cout << metrics.dump() << "\n";
        return;
      }
      std::printf("records: %zu (%lld skipped)\naccuracy %5.1f%%  macro-F1 %5.1f%%\n", ds.examples.size(),
                  (long long)ds.skipped, 100 * metrics["accuracy"].get<double>(),
                  100 * metrics["macro_f1"].get<double>());
      for (const auto& [label, m] : metrics["per_class"].items())
        std::printf("  %-12s precision %5.1f%%  recall %5.1f%%  F1 %5.1f%%  (%lld)\n", label.c_str(),
                    100 * m["precision"].get<double>(), 100 * m["recall"].get<double>(),
                    100 * m["f1"].get<double>(), (long long)m["support"].get<int64_t>());
      return;
    }
    check(hide->empty(), "--without applies to classifiers");
    if (is_whisper_model(a->model)) {  // speech recognition: word and character error rates
      WhisperBundle whisper = open_whisper(a->model);
      auto metrics = evaluate_transcription(whisper, data::find_manifest(a->data, "test"), a->limit);
      if (a->json) {
        std::cout << nlohmann::json{{"transcription", metrics}}.dump() << "\n";
        return;
      }
      std::printf("records: %lld (%lld skipped)\nWER %5.1f%%  CER %5.1f%%\n",
                  (long long)metrics["samples"].get<int64_t>(), (long long)metrics["skipped"].get<int64_t>(),
                  100 * metrics["wer"].get<double>(), 100 * metrics["cer"].get<double>());
      for (const auto& e : metrics["examples"])
        std::cout << "  ref: " << e["reference"].get<std::string>()
                  << "\n  hyp: " << e["hypothesis"].get<std::string>() << "\n";
      return;
    }
    if (is_clap_model(a->model)) {  // audio–text retrieval
      ClapBundle clap = load_clap(a->model);
      const auto manifest = data::find_manifest(a->data, "test");
      const auto ds =
          data::load_audio_text(manifest, clap_window_samples(clap.model->config.audio), a->limit);
      check(a->strict ? ds.skipped == 0 : !ds.clips.empty(), manifest.string(),
            a->strict ? ": a record could not be read (see above)" : ": no usable audio + text records");
      auto metrics = evaluate_clap(clap, ds);
      metrics["skipped_records"] = ds.skipped;
      if (a->json) {
        std::cout << metrics.dump() << "\n";
        return;
      }
      std::cout << "records: " << ds.clips.size() << " (" << ds.skipped << " skipped)\n";
      print_retrieval(metrics["retrieval"], {"audio_to_text", "text_to_audio"});
      return;
    }
    auto clip = load_clip(a->model);
    auto manifest = data::find_manifest(a->data, "test");
    data::ImageTextOptions options{.image_size = clip.model->config.vision.image_size,
                                   .context_length = clip.model->config.text.context_length,
                                   .skip_bad_records = !a->strict};
    auto ds = data::load_image_text(manifest, clip.tokenizer, options);
    check(ds.size() > 0, manifest.string(), ": no usable records to evaluate");
    auto classes =
        a->classes.empty() ? manifest.parent_path() / "classes.json" : std::filesystem::path(a->classes);
    check(a->classes.empty() || std::filesystem::exists(classes), "classes file ", classes.string(),
          " not found");
    auto metrics = evaluate_clip(clip.model, clip.tokenizer, ds, classes, parse_precision(a->precision));
    metrics["skipped_records"] = ds.skipped;
    if (a->json) {
      std::cout << metrics.dump() << "\n";
      return;
    }
    std::cout << "records: " << ds.size() << " (" << ds.skipped << " skipped)\n";
    print_retrieval(metrics["retrieval"], {"image_to_text", "text_to_image"});
    if (metrics.contains("zero_shot"))
      for (auto it = metrics["zero_shot"].begin(); it != metrics["zero_shot"].end(); ++it)
        std::printf("zero-shot %-8s %5.1f%%  (%lld images)\n", it.key().c_str(),
                    100 * it.value().get<double>(),
                    (long long)metrics["zero_shot_n"][it.key()].get<int64_t>());
  });
}

}  // namespace mmlearn::cli
