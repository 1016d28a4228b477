#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/search/indexing.h"

namespace mmlearn::cli {

void add_search(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("search", "find an index's nearest items to a text, an image or an audio clip");
  struct Args {
    std::string index, model, text, image, audio;
    int64_t k = 10;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--index", a->index, "index directory")->required();
  cmd->add_option("--model", a->model,
                  "the model that embeds the query (default: the one the index was built with)");
  cmd->add_option("--text", a->text, "query text");
  cmd->add_option("--image", a->image, "query image file");
  cmd->add_option("--audio", a->audio, "query audio file");
  cmd->add_option("--k", a->k, "results")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, R"(JSON on stdout: {"results": [{"id", "score", "key", "record"}]})");
  cmd->callback([a, cmd] {
    std::vector<std::pair<std::string, std::string>> given;
    for (const auto& [modality, value] :
         {std::pair{"text", a->text}, {"image", a->image}, {"audio", a->audio}})
      if (cmd->count(std::string("--") + modality)) given.emplace_back(modality, value);
    if (given.empty()) throw UsageError("search needs a query: --text, --image or --audio");
    if (given.size() > 1)
      throw UsageError("search takes one query (--text, --image or --audio), not several");
    const auto& [modality, input] = given.front();
    if (input.empty()) throw UsageError(str_cat("--", modality, " is empty"));
    auto idx = search::EmbeddingIndex::open(a->index);
    const std::string model_path = a->model.empty() ? idx.info().model : a->model;
    auto model = mmlearn::open_model(model_path);
    idx.check_probe(search::probe_embedding(*model), model_path);
    const auto query = search::embed_query(*model, modality, input);
    const auto hits = idx.search(query.data(), 1, a->k).front();
    if (a->json) {
      nlohmann::json results = nlohmann::json::array();
      for (const auto& h : hits)
        results.push_back({{"id", h.id}, {"score", h.score}, {"key", h.key}, {"record", h.record}});
      std::cout << nlohmann::json{{"results", results}}.dump() << "\n";
      return;
    }
    for (size_t i = 0; i < hits.size(); ++i) {
      std::printf("%3zu  %.4f  %s", i + 1, hits[i].score, hits[i].key.c_str());
      if (idx.info().modality != "text" && hits[i].record.contains("text") &&
          hits[i].record["text"].is_string())
        std::printf("  \"%s\"", hits[i].record["text"].get<std::string>().c_str());
      std::printf("\n");
    }
  });
}

}  // namespace mmlearn::cli
