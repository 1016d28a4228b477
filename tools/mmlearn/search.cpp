#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/search/indexing.h"

namespace mmlearn::cli {
namespace {

// Hits as JSON, or a line each: rank, score, key, the record's text (or what is said, and when).
void print_hits(const std::vector<search::SearchHit>& hits, bool json, bool show_text) {
  if (json) {
    nlohmann::json results = nlohmann::json::array();
    for (const auto& h : hits) results.push_back(search::to_json(h));
    std::cout << nlohmann::json{{"results", results}}.dump() << "\n";
    return;
  }
  for (size_t i = 0; i < hits.size(); ++i) {
    const auto& r = hits[i].record;
    std::printf("%3zu  %.4f  %s", i + 1, hits[i].score, hits[i].key.c_str());
    if (r.contains("transcript"))
      std::printf("  %.2f-%.2f s  \"%s\"", r["start"].get<double>(), r["end"].get<double>(),
                  r["transcript"].get<std::string>().c_str());
    else if (show_text && r.contains("text") && r["text"].is_string())
      std::printf("  \"%s\"", r["text"].get<std::string>().c_str());
    std::printf("\n");
  }
}

}  // namespace

void add_search(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "search",
      "find an index's nearest items to a text, an image, an audio clip, or an image with a "
      "text that says what to change (a composed query)");
  struct Args {
    std::string index, model, text, image, audio;
    int64_t k = 10;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--index", a->index, "index directory")->required();
  cmd->add_option("--model", a->model,
                  "the model that embeds the query (default: the one the index was built with)");
  cmd->add_option("--text", a->text, "query text; with --image, the change to make to it");
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
    if (given.empty())
      throw UsageError("search needs a query: --text, --image, --audio, or --image with --text");
    const bool composed = given.size() == 2 && cmd->count("--image") && cmd->count("--text");
    if (given.size() > 1 && !composed)
      throw UsageError(
          "search takes one query (--text, --image or --audio), or --image with --text (a composed query)");
    for (const auto& [modality, input] : given)
      if (input.empty()) throw UsageError(str_cat("--", modality, " is empty"));
    if (search::TranscriptIndex::exists(a->index)) {  // spoken words: the query is text, no model embeds it
      if (given.size() != 1 || given.front().first != "text")
        throw UsageError(str_cat(a->index, " is a spoken-word index: search it with --text"));
      if (cmd->count("--model"))
        throw UsageError(
            str_cat("--model does not apply to a spoken-word index (", a->index, " is searched by words)"));
      print_hits(search::TranscriptIndex::open(a->index).search(a->text, a->k), a->json, true);
      return;
    }
    auto idx = search::EmbeddingIndex::open(a->index);
    const std::string model_path = a->model.empty() ? idx.info().model : a->model;
    auto model = mmlearn::open_model(model_path);
    idx.check_probe(search::probe_embedding(*model), model_path);
    const auto query = composed ? search::compose_query(*model, a->image, a->text)
                                : search::embed_query(*model, given.front().first, given.front().second);
    print_hits(idx.search(query.data(), 1, a->k).front(), a->json, idx.info().modality != "text");
  });
}

}  // namespace mmlearn::cli
