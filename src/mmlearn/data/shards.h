// WebDataset shards: tar files whose members are grouped into samples by key (the member name up to the
// first dot of its file name: 00000012.json, 00000012.png, 00000012.wav form one sample). mmlearn writes a
// sample as KEY.json (the manifest record, its media fields naming the member extension) plus one member per
// medium. `--data` takes a shard set wherever it takes a manifest: "shards/{000000..000099}.tar", one .tar,
// or a directory of .tar files; it is unpacked once into a cache that the manifest-based loaders read.
//
//   mmlearn::data::pack_shards("shapes/train.jsonl", "shards", 1000);   // shards/000000.tar, ...
//   auto manifest = mmlearn::data::find_manifest("shards/{000000..000003}.tar", "train");
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mmlearn::data {

// Whether `data` names a shard set rather than a data directory or a manifest.
bool is_shard_set(const std::filesystem::path& data);
// The shard files of a set, in order; errors name the first that is missing.
std::vector<std::filesystem::path> shard_paths(const std::filesystem::path& data);

struct PackResult {
  int64_t samples = 0, shards = 0;
};
// Writes `manifest`'s records as shards out/000000.tar, ... of `per_shard` samples each.
PackResult pack_shards(const std::filesystem::path& manifest, const std::filesystem::path& out,
                       int64_t per_shard);

// Unpacks a shard set (once; later calls find the cache) and returns its manifest. Samples that cannot be
// read (a corrupt archive, a sample without its record or a medium) are left out and listed by
// shard_problems.
std::filesystem::path unpack_shards(const std::filesystem::path& data);
// What unpacking left out of the set whose manifest this is ("shard: sample KEY: why"); empty for a manifest
// that is not from shards.
std::vector<std::string> shard_problems(const std::filesystem::path& manifest);

}  // namespace mmlearn::data
