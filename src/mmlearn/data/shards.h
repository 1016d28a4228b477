// WebDataset shards: tar files whose members are grouped into samples by key (the member name up to the
// first dot of its file name: 00000012.json, 00000012.png, 00000012.wav form one sample). mmlearn writes a
// sample as KEY.json (the manifest record, its media fields naming the member extension) plus one member per
// medium. `train --data` takes a shard set: "shards/{000000..000099}.tar", one .tar, or a directory of .tar
// files. Reading one indexes it: the headers are scanned and the JSON records read, but media stay in the
// shards until a batch needs them (Manifest::medium reads a member in place).
//
//   mmlearn::data::pack_shards(mmlearn::data::read_manifest("shapes/train.jsonl"), "shards", 1000);
//   mmlearn::data::Manifest set = mmlearn::data::read_shard_set("shards/{000000..000003}.tar");
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mmlearn/data/manifest.h"

namespace mmlearn::data {

// Whether `data` names a shard set rather than a data directory or a manifest.
bool is_shard_set(const std::filesystem::path& data);
// The shard files of a set, in order; errors name the first that is missing.
std::vector<std::filesystem::path> shard_paths(const std::filesystem::path& data);

struct PackResult {
  int64_t samples = 0, shards = 0;
};
// Writes `manifest`'s records as shards out/000000.tar, ... of `per_shard` samples each.
PackResult pack_shards(const Manifest& manifest, const std::filesystem::path& out, int64_t per_shard);

// The samples of a shard set as records, in shard order. Samples that cannot be used (a corrupt archive, a
// sample without its record or a medium its record names) are left out and listed in Manifest::problems.
Manifest read_shard_set(const std::filesystem::path& data);

}  // namespace mmlearn::data
