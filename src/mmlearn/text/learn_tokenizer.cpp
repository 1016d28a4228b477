#include "mmlearn/text/learn_tokenizer.h"

#include <memory>

#include "mmlearn/core/error.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/manifest.h"

namespace mmlearn::text {

BpeTokenizer learn_tokenizer(const std::filesystem::path& manifest_path, int64_t vocab_size) {
  if (vocab_size < kMinLearnedVocab)  // before reading anything
    return learn_tokenizer(data::Manifest{}, vocab_size);
  return learn_tokenizer(data::read_manifest(manifest_path), vocab_size);
}

BpeTokenizer learn_tokenizer(const data::Manifest& manifest, int64_t vocab_size,
                             const std::vector<std::string>& fields) {
  if (vocab_size < kMinLearnedVocab)
    throw UsageError(str_cat("--vocab-size ", vocab_size, ": a learned byte-level vocabulary needs at least ",
                             kMinLearnedVocab, " tokens (512 byte symbols and 2 special tokens)"));
  std::vector<std::string> texts;
  for (const auto& r : manifest.records)
    for (const auto& field : fields)
      if (r.json.contains(field) && r.json[field].is_string())
        texts.push_back(r.json[field].get<std::string>());
  check(!texts.empty(), manifest.path.string(), ": no record has a \"", join(fields, "\" or \""),
        "\" field to learn a tokenizer from");
  std::unique_ptr<Progress> bar;
  return train_bpe(texts, {.vocab_size = vocab_size}, [&](int64_t done, int64_t total) {
    if (!bar) bar = std::make_unique<Progress>("tokenizer", total, "merge");
    bar->update(done);
  });
}

}  // namespace mmlearn::text
