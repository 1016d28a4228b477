#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/data/mood.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/data/shards.h"
#include "mmlearn/data/synthetic.h"

namespace mmlearn::cli {

void add_data(CLI::App& app) {
  auto* data = app.add_subcommand("data", "make data sets");
  data->require_subcommand(1);
  auto* shapes = data->add_subcommand(
      "shapes", "the synthetic shapes world: scenes (captions, attributes, Q&A) or the mood task");
  auto config = std::make_shared<data::ShapesConfig>();
  auto out = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  shapes->add_option("--out", *out, "output directory (train.jsonl, test.jsonl, classes.json, images/)")
      ->required();
  shapes->add_option("--train", config->n_train, "training records")->capture_default_str();
  shapes->add_option("--test", config->n_test, "held-out records")->capture_default_str();
  shapes->add_option("--seed", config->seed, "random seed (same seed, same bytes)")->capture_default_str();
  shapes->add_option("--image-size", config->image_size,
                     "image side in pixels (default: scenes 64, mood 48)");
  shapes->add_option("--max-objects", config->max_objects, "objects per scene, 1 to 3")
      ->capture_default_str();
  shapes->add_flag("--audio", config->audio, "also speak each caption (16 kHz WAV, several voices)");
  auto task = std::make_shared<std::string>("scenes");
  shapes
      ->add_option("--task", *task,
                   "scenes: objects with captions, attributes and Q&A; edit: (scene, instruction, edited "
                   "scene) triplets for composed retrieval; vqa: a question and its answer a record, about a "
                   "scene or a bar or line chart; mood: faces, sentences [and speech] whose sentiment needs "
                   "both (writes ceiling.json)")
      ->check(CLI::IsMember({"scenes", "edit", "vqa", "mood"}))
      ->capture_default_str();
  shapes->add_flag("--json", *as_json, "print a JSON summary on stdout");
  auto overwrite = std::make_shared<bool>(false);
  shapes->add_flag("--overwrite", *overwrite, "replace the data set already in --out");
  shapes->callback([=] {
    if ((*task == "edit" || *task == "vqa") && config->audio)
      throw UsageError(str_cat("--audio does not apply to --task ", *task));
    data::prepare_data_dir(*out, *overwrite);
    Progress bar(*task == "mood" ? "mood" : "shapes", config->n_train + config->n_test, "rec");
    auto on_progress = [&](int64_t done, int64_t) { bar.update(done); };
    nlohmann::json summary{{"out", *out}};
    if (*task == "mood") {
      data::MoodConfig mood{.n_train = config->n_train,
                            .n_test = config->n_test,
                            .seed = config->seed,
                            .image_size = shapes->count("--image-size") ? config->image_size : 48,
                            .audio = config->audio};
      auto result = data::generate_mood(*out, mood, on_progress);
      summary["records"] = result.records;
      summary["seconds"] = result.seconds;
      summary["ceiling"] = result.ceiling["ceiling"];
    } else {
      config->task = *task == "edit"  ? data::ShapesTask::edit
                     : *task == "vqa" ? data::ShapesTask::vqa
                                      : data::ShapesTask::scenes;
      auto result = data::generate_shapes(*out, *config, on_progress);
      summary["records"] = result.records;
      summary["seconds"] = result.seconds;
    }
    bar.finish();
    const double rate = summary["records"].get<double>() / std::max(summary["seconds"].get<double>(), 1e-9);
    summary["records_per_s"] = rate;
    if (*as_json) {
      std::cout << summary.dump() << "\n";
      return;
    }
    std::cerr << "wrote " << summary["records"] << " records to " << *out << " in " << summary["seconds"]
              << " s (" << static_cast<int64_t>(rate) << " records/s)\n";
    if (summary.contains("ceiling"))
      std::cerr << "best accuracy from one modality alone (ceiling.json): " << summary["ceiling"].dump()
                << "\n";
  });

  auto* pack = data->add_subcommand(
      "pack", "write a manifest's records as WebDataset tar shards (KEY.json + one member per medium)");
  auto from = std::make_shared<std::string>();
  auto shards_out = std::make_shared<std::string>();
  auto per_shard = std::make_shared<int64_t>(1000);
  auto pack_json = std::make_shared<bool>(false);
  pack->add_option("--data", *from, "a directory with train.jsonl, or a manifest")->required();
  pack->add_option("--out", *shards_out, "directory for 000000.tar, 000001.tar, ...")->required();
  pack->add_option("--per-shard", *per_shard, "samples per shard")
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}))
      ->capture_default_str();
  pack->add_flag("--json", *pack_json, "print a JSON summary on stdout");
  pack->callback([=] {
    check(!std::filesystem::exists(*shards_out) || std::filesystem::is_empty(*shards_out), *shards_out,
          " is not empty: choose an empty or new directory");
    const auto r = data::pack_shards(data::open_manifest(*from, "train"), *shards_out, *per_shard);
    if (*pack_json) {
      const nlohmann::json summary{{"out", *shards_out}, {"samples", r.samples}, {"shards", r.shards}};
      std::cout << summary.dump() << "\n";
      return;
    }
    std::cerr << "wrote " << r.samples << " samples in " << r.shards << " shards to " << *shards_out
              << " (train with --data '" << *shards_out << "/{000000.." << std::setw(6) << std::setfill('0')
              << std::max<int64_t>(r.shards - 1, 0) << "}.tar')\n";
  });
}

}  // namespace mmlearn::cli
