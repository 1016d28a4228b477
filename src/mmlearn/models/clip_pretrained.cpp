#include "mmlearn/models/clip_pretrained.h"

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/models/weight_files.h"

namespace mmlearn {
namespace fs = std::filesystem;

void save_clip(const fs::path& dir, const Clip& model, const text::BpeTokenizer& tokenizer) {
  fs::create_directories(dir);
  write_file_atomic(dir / "config.json", to_json(model->config).dump(2) + "\n");
  save_parameters(*model, dir / "model.safetensors", {{"format", "pt"}, {"producer", "mmlearn"}});
  tokenizer.save(dir);
}

namespace {
void check_model_dir(const fs::path& dir, std::initializer_list<const char*> files) {
  check(fs::is_directory(dir), "model ", dir.string(),
        " is not a directory (expected a model directory with ",
        "config.json, model.safetensors, vocab.json, merges.txt)");
  for (const char* name : files)
    check(fs::exists(dir / name), "model directory ", dir.string(), " has no ", name,
          " (a model directory holds config.json, model.safetensors, vocab.json and merges.txt)");
}
}  // namespace

ClipConfig load_clip_config(const fs::path& dir) {
  check_model_dir(dir, {"config.json"});
  const fs::path path = dir / "config.json";
  return clip_config_from_json(read_json_file(path), path.string());
}

ClipBundle load_clip(const fs::path& dir) {
  check_model_dir(dir, {"config.json", "model.safetensors", "vocab.json", "merges.txt"});
  const fs::path weights = dir / "model.safetensors";
  return make_clip(load_clip_config(dir), text::BpeTokenizer::load(dir), load_safetensors(weights),
                   weights.string());
}

ClipBundle make_clip(const ClipConfig& config, text::BpeTokenizer tokenizer, const TensorMap& weights,
                     const std::string& where) {
  check(tokenizer.vocab_size() <= config.text.vocab_size, where, ": the tokenizer has ",
        tokenizer.vocab_size(), " tokens but the model only ", config.text.vocab_size,
        " (wrong tokenizer files?)");
  check(tokenizer.eot_id() == config.text.eot_token_id, where, ": the tokenizer's <|endoftext|> is id ",
        tokenizer.eot_id(), " but the model pools at id ", config.text.eot_token_id,
        " (wrong tokenizer files?)");
  check_config_fits_weights(least_parameters(config), weights, "the model's config", where);
  ClipBundle bundle{Clip(config), std::move(tokenizer)};
  load_parameters(*bundle.model, weights, where);
  bundle.model->eval();
  return bundle;
}

torch::Tensor tokenize_batch(const text::BpeTokenizer& tokenizer, const std::vector<std::string>& texts,
                             int64_t context_length) {
  auto ids = torch::empty({static_cast<int64_t>(texts.size()), context_length}, torch::kLong);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto row = tokenizer.encode_for_model(texts[i], static_cast<int>(context_length));
    std::copy(row.begin(), row.end(), ids[static_cast<int64_t>(i)].data_ptr<int64_t>());
  }
  return ids;
}

}  // namespace mmlearn
