#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/search/indexing.h"
#include "model_args.h"

namespace mmlearn::cli {

namespace {

struct AddArgs {
  std::string data, precision = "fp32";
  int64_t batch_size = 64, max_bad = -1;
  bool json = false;
};

void add_record_options(CLI::App* cmd, AddArgs& a) {
  cmd->add_option("--data", a.data, "manifest (.jsonl) whose records to index")->required();
  cmd->add_option("--batch-size", a.batch_size, "records embedded and committed together")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  cmd->add_option("--precision", a.precision, "fp32 (exact) or bf16")
      ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
      ->capture_default_str();
  cmd->add_option("--max-bad", a.max_bad, "records that cannot be indexed before stopping (default: any)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", a.json, "JSON summary on stdout");
}

// What an add did, and what the index now is.
void report(const search::AddResult& r, const nlohmann::json& info, const std::filesystem::path& dir,
            bool json) {
  if (json) {
    std::cout << nlohmann::json{{"added", r.added},
                                {"already", r.already},
                                {"skipped", r.skipped},
                                {"index", info}}
                     .dump()
              << "\n";
    return;
  }
  for (const auto& why : r.skipped) std::cerr << "skipped " << why << "\n";
  std::cerr << "added " << r.added << " " << info["modality"].get<std::string>() << " items to "
            << dir.string() << " (" << info["count"] << " held";
  if (r.already) std::cerr << "; " << r.already << " were already there";
  if (!r.skipped.empty()) std::cerr << "; " << r.skipped.size() << " skipped";
  std::cerr << ")\n";
}

search::AddOptions add_options(const AddArgs& a, Progress& bar) {
  return {.batch_size = a.batch_size,
          .precision = parse_precision(a.precision),
          .max_bad = a.max_bad,
          .progress = [&bar](int64_t done, int64_t) { bar.update(done); }};
}

// Transcribes the manifest's recordings into a spoken-word index, with a progress bar.
void fill(search::TranscriptIndex& index, Model& model, const AddArgs& a) {
  const auto manifest = data::read_manifest(a.data);
  Progress bar("transcribe", static_cast<int64_t>(manifest.records.size()), "rec");
  const auto r = search::add_recordings(index, model, manifest, add_options(a, bar));
  bar.finish();
  report(r, index.info(), index.dir(), a.json);
}

// Embeds the manifest's records into the index, with a progress bar, and reports what was added.
void fill(search::EmbeddingIndex& index, Model& model, const AddArgs& a) {
  const auto manifest = data::read_manifest(a.data);
  Progress bar("index", static_cast<int64_t>(manifest.records.size()), "rec");
  const auto r = search::add_records(index, model, manifest, add_options(a, bar));
  bar.finish();
  index.save();
  const auto info = index.info();
  report(r, search::to_json(info), index.dir(), a.json);
  if (!a.json && search::has_lists(info.kind) && info.count < 1000)
    std::cerr << "warning: an " << search::index_kind_name(info.kind)
              << " index trains on at least 1000 items and holds " << info.count
              << ": searching it is an error until it holds more\n";
}

std::unique_ptr<Model> open_index_model(const search::EmbeddingIndex& index) {
  auto model = mmlearn::open_model(index.info().model);
  index.check_probe(search::probe_embedding(*model), index.info().model);
  return model;
}

}  // namespace

void add_index(CLI::App& app) {
  auto* index = app.add_subcommand("index", "build, update and describe a search index of embedded records");
  index->require_subcommand(1);

  auto* build = index->add_subcommand(
      "build", "embed a manifest's records into a new index (run again after an interruption to continue)");
  struct BuildArgs {
    ModelArgs model;
    AddArgs add;
    std::string out, modality, kind = "flat";
  };
  auto b = std::make_shared<BuildArgs>();
  add_model_options(build, b->model);
  add_record_options(build, b->add);
  build->add_option("--out", b->out, "index directory")->required();
  build->add_option(
      "--modality", b->modality,
      "what to index: image, audio or text (default: the model's non-text modality the records have)");
  build
      ->add_option("--kind", b->kind,
                   "flat (exact), hnsw, ivf or ivfpq (approximate, for large collections: see the guide); a "
                   "speech recognizer's "
                   "index is of recordings by their words")
      ->capture_default_str();
  build->callback([b, build] {
    const auto kind = search::parse_index_kind(b->kind);
    auto model = open_model(b->model);
    if (model->embeds().empty()) {  // a recognizer: recordings indexed by what is said in them
      for (const char* flag : {"--kind", "--modality", "--batch-size", "--precision"})
        if (build->count(flag))
          throw UsageError(str_cat(flag, " does not apply to a spoken-word index (", b->model.model,
                                   " transcribes; it does not embed)"));
      const auto manifest = data::read_manifest(b->add.data);
      check(std::any_of(manifest.records.begin(), manifest.records.end(),
                        [](const data::Record& r) { return r.json.contains("audio"); }),
            b->add.data, ": no record has \"audio\" (a spoken-word index holds recordings; ", b->model.model,
            " transcribes, it does not embed)");
      auto idx = search::TranscriptIndex::exists(b->out)
                     ? search::TranscriptIndex::open(b->out)
                     : search::create_transcript_index(b->out, *model, b->model.model);
      fill(idx, *model, b->add);
      return;
    }
    if (search::EmbeddingIndex::exists(b->out)) {
      // An interrupted build continues: the same model and data, and the records not held yet.
      auto idx = search::EmbeddingIndex::open(b->out);
      idx.check_probe(search::probe_embedding(*model), b->model.model);
      if (!b->modality.empty() && b->modality != idx.info().modality)
        throw UsageError(str_cat(b->out, " indexes ", idx.info().modality, ", not --modality ", b->modality));
      if (kind != idx.info().kind)
        throw UsageError(str_cat(b->out, " is a ", search::index_kind_name(idx.info().kind),
                                 " index, not --kind ", b->kind));
      fill(idx, *model, b->add);
      return;
    }
    const auto manifest = data::read_manifest(b->add.data);
    const std::string modality =
        b->modality.empty() ? search::default_modality(*model, manifest) : b->modality;
    auto idx = search::create_index(b->out, *model, b->model.model, modality, kind);
    fill(idx, *model, b->add);
  });

  auto* add =
      index->add_subcommand("add", "embed more records into an index, with the model it was built with");
  struct AddToArgs {
    std::string index;
    AddArgs add;
  };
  auto d = std::make_shared<AddToArgs>();
  add->add_option("--index", d->index, "index directory")->required();
  add_record_options(add, d->add);
  add->callback([d] {
    if (search::TranscriptIndex::exists(d->index)) {
      auto idx = search::TranscriptIndex::open(d->index);
      auto model = mmlearn::open_model(idx.model());
      fill(idx, *model, d->add);
      return;
    }
    auto idx = search::EmbeddingIndex::open(d->index);
    auto model = open_index_model(idx);
    fill(idx, *model, d->add);
  });

  auto* remove =
      index->add_subcommand("remove", "remove items from an index by key (a media file's path, or a text)");
  struct RemoveArgs {
    std::string index;
    std::vector<std::string> keys;
    bool json = false;
  };
  auto r = std::make_shared<RemoveArgs>();
  remove->add_option("--index", r->index, "index directory")->required();
  remove->add_option("--key", r->keys, "key of an item (repeatable)")->required();
  remove->add_flag("--json", r->json, "JSON summary on stdout");
  remove->callback([r] {
    std::vector<std::string> keys;
    for (const auto& key : r->keys) {
      // Paths are kept absolute; a relative one given here means the same file.
      std::error_code ec;
      const bool file = std::filesystem::exists(key, ec);
      keys.push_back(file ? std::filesystem::absolute(key).lexically_normal().string() : key);
    }
    int64_t removed = 0;
    nlohmann::json info;
    if (search::TranscriptIndex::exists(r->index)) {
      auto idx = search::TranscriptIndex::open(r->index);
      removed = idx.remove(keys);
      info = idx.info();
    } else {
      auto idx = search::EmbeddingIndex::open(r->index);
      removed = idx.remove(keys);
      idx.save();
      info = search::to_json(idx.info());
    }
    if (r->json) {
      std::cout << nlohmann::json{{"removed", removed}, {"index", info}}.dump() << "\n";
      return;
    }
    std::cerr << "removed " << removed << " of " << keys.size() << " keys from " << r->index << " ("
              << info["count"] << " held)\n";
    if (removed < static_cast<int64_t>(keys.size())) throw Error("some keys were not in the index");
  });

  auto* info = index->add_subcommand("info", "what an index holds: count, model, modality, kind, dimension");
  auto info_dir = std::make_shared<std::string>();
  auto info_json = std::make_shared<bool>(false);
  info->add_option("--index", *info_dir, "index directory")->required();
  info->add_flag(
      "--json", *info_json,
      R"(JSON on stdout: {"count", "model", "model_type", "modality", "kind", "dim", and "lists" for an ivf or ivfpq index})");
  info->callback([=] {
    if (search::TranscriptIndex::exists(*info_dir)) {
      const auto i = search::TranscriptIndex::open(*info_dir).info();
      if (*info_json) {
        std::cout << i.dump() << "\n";
        return;
      }
      std::cout << *info_dir << ": " << i["count"] << " recordings, " << i["utterances"]
                << " utterances indexed by their words\nmodel: " << i["model"].get<std::string>() << " ("
                << i["model_type"].get<std::string>() << ")\n";
      return;
    }
    const auto i = search::EmbeddingIndex::open(*info_dir).info();
    if (*info_json) {
      std::cout << search::to_json(i).dump() << "\n";
      return;
    }
    std::cout << *info_dir << ": " << i.count << " " << i.modality << " items, "
              << search::index_kind_name(i.kind) << " index of dimension " << i.dim << "\nmodel: " << i.model
              << " (" << i.model_type << ")\n";
  });
}

}  // namespace mmlearn::cli
