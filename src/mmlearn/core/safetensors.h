// safetensors: the tensor file format of Hugging Face checkpoints
// (https://github.com/huggingface/safetensors). Layout: u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the data buffer. Files come from
// strangers, so the reader validates everything before touching data: header size, JSON, dtypes, shapes,
// offsets in range, tensors that neither overlap nor leave gaps.
//
//   mmlearn::SafetensorsFile file("model.safetensors");       // mmap + validation
//   torch::Tensor w = file.tensor("visual.conv1.weight");     // zero-copy when aligned, copy-on-write
//   mmlearn::save_safetensors("out.safetensors", {{"w", w}}, {{"format", "pt"}});
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mmlearn {

struct SafetensorsLimits {
  uint64_t max_header_bytes = 100 * 1024 * 1024;  // the reference implementation's limit
  int max_rank = 16;
};

struct TensorEntry {
  std::string name;
  std::string dtype;  // as in the file: "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // offsets into the data buffer
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path, const SafetensorsLimits& limits = {});

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorEntry>& entries() const { return entries_; }  // in file order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const TensorEntry& entry(const std::string& name) const;
  // The tensor in its stored dtype; shares the mapping (private, so writes never reach the file).
  torch::Tensor tensor(const std::string& name) const;

 private:
  struct Mapping;
  std::filesystem::path path_;
  std::shared_ptr<Mapping> mapping_;
  const uint8_t* data_ = nullptr;  // start of the data buffer
  std::vector<TensorEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

using TensorMap = std::map<std::string, torch::Tensor>;

TensorMap load_safetensors(const std::filesystem::path& path);
// Writes atomically; tensors are stored contiguous, in name order, on the CPU.
void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// "F32" <-> torch::kFloat32 etc.; throws for dtypes libtorch cannot hold.
torch::Dtype safetensors_dtype(const std::string& name);
std::string safetensors_dtype_name(torch::Dtype dtype);

}  // namespace mmlearn
