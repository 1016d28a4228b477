#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/text/bpe.h"
#include "mmlearn/text/tokenizer_files.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_tokenizer(CLI::App& app) {
  auto* tok = app.add_subcommand("tokenizer", "learn tokenizers");
  tok->require_subcommand(1);
  auto* train = tok->add_subcommand("train", "learn a byte-level BPE vocabulary from a manifest's text");
  struct Args {
    std::string data, out;
    int64_t vocab_size = 1024, min_frequency = 2;
  };
  auto a = std::make_shared<Args>();
  train->add_option("--data", a->data, "manifest (.jsonl) or directory holding train.jsonl")->required();
  train->add_option("--out", a->out, "directory to write vocab.json + merges.txt into")->required();
  train->add_option("--vocab-size", a->vocab_size, "vocabulary size incl. 512 byte symbols and 2 specials")
      ->capture_default_str();
  train->add_option("--min-frequency", a->min_frequency, "stop when the best pair is rarer")
      ->capture_default_str();
  train->callback([a] {
    auto manifest = data::open_manifest(a->data, "train");
    std::vector<std::string> texts;
    for (const auto& r : manifest.records) texts.push_back(data::string_field(manifest, r, "text"));
    std::unique_ptr<Progress> bar;
    auto tokenizer = text::train_bpe(texts, {.vocab_size = a->vocab_size, .min_frequency = a->min_frequency},
                                     [&](int64_t done, int64_t total) {
                                       if (!bar)
                                         bar = std::make_unique<Progress>("tokenizer", total, "merge");
                                       bar->update(done);
                                     });
    tokenizer.save(a->out);
    std::cerr << "wrote " << a->out << "/vocab.json and merges.txt (" << tokenizer.vocab_size()
              << " tokens from " << texts.size() << " texts)\n";
  });
}

void add_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "show the token ids a model's tokenizer gives");
  struct Args {
    ModelArgs model;
    std::vector<std::string> texts;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  add_model_options(cmd, a->model);
  cmd->add_option("--text", a->texts, "text to tokenize (repeatable)")->required();
  cmd->add_flag("--json", a->json, "JSON output");
  cmd->callback([a] {
    // A bare tokenizer directory (from `tokenizer train`) gives the ids without special tokens or padding.
    const std::filesystem::path path = a->model.model;
    const bool bare = std::filesystem::is_directory(path) && !std::filesystem::exists(path / "config.json") &&
                      !std::filesystem::exists(path / "open_clip_model.safetensors");
    std::unique_ptr<Model> model;
    std::optional<text::BpeTokenizer> bare_tokenizer;
    if (bare)
      bare_tokenizer = text::load_clip_tokenizer(path);
    else
      model = open_model(a->model);
    const ClipBundle* clip =
        bare ? nullptr : &need<ClipBundle>(*model, "tokenize", "a CLIP model or a tokenizer directory");
    const text::BpeTokenizer& tokenizer = bare ? *bare_tokenizer : clip->tokenizer;
    const int64_t context = bare ? 0 : clip->model->config.text.context_length;
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : a->texts) {
      auto ids = context ? tokenizer.encode_for_model(t, static_cast<int>(context)) : tokenizer.encode(t);
      out.push_back({{"text", t}, {"ids", ids}, {"tokens", tokenizer.tokens(t)}});
    }
    if (a->json) {
      std::cout << out.dump() << "\n";
      return;
    }
    for (const auto& r : out) {
      std::cout << r["text"].get<std::string>() << "\n  ids:   " << r["ids"].dump() << "\n  tokens:";
      for (const auto& s : r["tokens"]) std::cout << " " << s.get<std::string>();
      std::cout << "\n";
    }
  });
}

}  // namespace mmlearn::cli
