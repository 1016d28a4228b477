#include "mmlearn/data/image_text_dataset.h"

#include <ATen/Parallel.h>

#include <optional>
#include <set>

#include "mmlearn/core/error.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/record_media.h"

namespace mmlearn::data {

namespace {

// A record's pixels and token ids, written into rows `pixels` [3, S, S] and `ids` [T], as up-front decoding
// and streaming both read them.
void read_example(const Manifest& manifest, const Record& record, const text::BpeTokenizer& tokenizer,
                  const ImageTextOptions& options, torch::Tensor pixels, torch::Tensor ids) {
  const std::string text = string_field(manifest, record, "text");
  pixels.copy_(read_record_image(manifest, record, options.image_size, options.decode));
  auto row = tokenizer.encode_for_model(text, static_cast<int>(options.context_length));
  std::copy(row.begin(), row.end(), ids.data_ptr<int64_t>());
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> ImageTextDataset::batch(const std::vector<int64_t>& indices) const {
  const auto index = torch::tensor(indices, torch::kLong);
  if (!streamed) return {images.index_select(0, index), ids.index_select(0, index)};
  const int64_t B = static_cast<int64_t>(indices.size()), S = options.image_size, T = options.context_length;
  auto pixels = torch::empty({B, 3, S, S}, torch::kUInt8);
  auto tokens = torch::empty({B, T}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    streamed->decode(indices[static_cast<size_t>(b)], [&](const Record& r) {
      read_example(streamed->manifest(), r, *tokenizer, options, pixels[b], tokens[b]);
      return 0;
    });
  }
  return {pixels, tokens};
}

ImageTextDataset load_image_text(const std::filesystem::path& path, const text::BpeTokenizer& tokenizer,
                                 const ImageTextOptions& options) {
  return load_image_text(read_manifest(path), tokenizer, options);
}

ImageTextDataset load_image_text(Manifest manifest, const text::BpeTokenizer& tokenizer,
                                 const ImageTextOptions& options) {
  const std::filesystem::path path = manifest.path;
  if (!manifest.shards.empty()) {
    ImageTextDataset ds;
    ds.streamed = std::make_shared<StreamedRecords>(std::move(manifest));
    ds.tokenizer = &tokenizer;
    ds.options = options;
    return ds;
  }
  const int64_t n = static_cast<int64_t>(manifest.records.size());
  const int64_t S = options.image_size, T = options.context_length;
  auto images = torch::empty({n, 3, S, S}, torch::kUInt8);
  auto ids = torch::empty({n, T}, torch::kLong);
  std::vector<std::optional<std::string>> errors(n);

  Progress bar("load " + path.filename().string(), n, "rec");
  std::atomic<int64_t> done{0};
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const Record& r = manifest.records[i];
      try {
        read_example(manifest, r, tokenizer, options, images[i], ids[i]);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
      ++done;
    }
    if (at::get_thread_num() == 0) bar.update(done);
  });
  bar.update(n);
  bar.finish();

  ImageTextDataset ds;
  ds.manifest.path = manifest.path;
  ds.options = options;
  ds.tokenizer = &tokenizer;
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if (errors[i]) {
      if (!options.skip_bad_records) throw Error(*errors[i]);
      ++ds.skipped;
      if (ds.skip_reasons.size() < 5) ds.skip_reasons.push_back(*errors[i]);
      continue;
    }
    keep.push_back(i);
    ds.texts.push_back(manifest.records[i].json["text"].get<std::string>());
    ds.manifest.records.push_back(std::move(manifest.records[i]));
  }
  auto index = torch::tensor(keep, torch::kLong);
  ds.images = keep.size() == static_cast<size_t>(n) ? images : images.index_select(0, index);
  ds.ids = keep.size() == static_cast<size_t>(n) ? ids : ids.index_select(0, index);
  return ds;
}

torch::Tensor load_targets(ImageTextDataset& sources, const text::BpeTokenizer& tokenizer,
                           const ImageTextOptions& load) {
  Manifest targets = sources.manifest;
  for (auto& r : targets.records) {
    check(r.json.contains("target") && r.json["target"].is_string(), targets.where(r),
          ": no \"target\" picture; instruction editors train and edits are judged on edit triplets (mmlearn "
          "data shapes --task edit writes them)");
    r.json["image"] = r.json["target"];
  }
  const ImageTextDataset read = load_image_text(std::move(targets), tokenizer, load);
  if (read.size() == sources.size()) return read.images;
  std::set<int64_t> lines;
  for (const auto& r : read.manifest.records) lines.insert(r.line);
  std::vector<int64_t> keep;
  std::vector<Record> records;
  std::vector<std::string> texts;
  for (int64_t i = 0; i < sources.size(); ++i)
    if (lines.count(sources.manifest.records[static_cast<size_t>(i)].line)) {
      keep.push_back(i);
      records.push_back(sources.manifest.records[static_cast<size_t>(i)]);
      texts.push_back(sources.texts[static_cast<size_t>(i)]);
    }
  const auto rows = torch::tensor(keep, torch::kLong);
  sources.skipped += sources.size() - static_cast<int64_t>(keep.size());
  sources.skip_reasons.insert(sources.skip_reasons.end(), read.skip_reasons.begin(), read.skip_reasons.end());
  sources.images = sources.images.index_select(0, rows);
  sources.ids = sources.ids.index_select(0, rows);
  sources.texts = std::move(texts);
  sources.manifest.records = std::move(records);
  return read.images;
}

}  // namespace mmlearn::data
