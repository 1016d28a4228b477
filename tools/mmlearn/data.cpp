#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/shapes.h"

namespace mmlearn::cli {

void add_data(CLI::App& app) {
  auto* data = app.add_subcommand("data", "make data sets");
  data->require_subcommand(1);
  auto* shapes =
      data->add_subcommand("shapes", "the synthetic shapes world: scenes, captions, attributes, Q&A");
  auto config = std::make_shared<data::ShapesConfig>();
  auto out = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  shapes->add_option("--out", *out, "output directory (train.jsonl, test.jsonl, classes.json, images/)")
      ->required();
  shapes->add_option("--train", config->n_train, "training records")->capture_default_str();
  shapes->add_option("--test", config->n_test, "held-out records")->capture_default_str();
  shapes->add_option("--seed", config->seed, "random seed (same seed, same bytes)")->capture_default_str();
  shapes->add_option("--image-size", config->image_size, "image side in pixels")->capture_default_str();
  shapes->add_option("--max-objects", config->max_objects, "objects per scene, 1 to 3")
      ->capture_default_str();
  shapes->add_flag("--audio", config->audio, "also speak each caption (16 kHz WAV, several voices)");
  shapes->add_flag("--json", *as_json, "print a JSON summary on stdout");
  shapes->callback([=] {
    Progress bar("shapes", config->n_train + config->n_test, "rec");
    auto summary = data::generate_shapes(*out, *config, [&](int64_t done, int64_t) { bar.update(done); });
    bar.finish();
    const double rate = summary.records / std::max(summary.seconds, 1e-9);
    if (*as_json)
      std::cout << nlohmann::json{{"out", *out},
                                  {"records", summary.records},
                                  {"seconds", summary.seconds},
                                  {"records_per_s", rate}}
                       .dump()
                << "\n";
    else
      std::cerr << "wrote " << summary.records << " records to " << *out << " in " << summary.seconds
                << " s (" << static_cast<int64_t>(rate) << " records/s)\n";
  });
}

}  // namespace mmlearn::cli
