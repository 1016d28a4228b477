// torch.save checkpoints (.pt, .pth, .bin) read natively, without Python and without running their pickle.
//
// Since torch 1.6 a checkpoint is a zip archive: <archive>/data.pkl pickles the saved object and each tensor
// storage is a record <archive>/data/<key> of raw little-endian elements. parse_pickle (pickle.h), which
// executes nothing, decodes the pickle into a value tree whose tensors are TensorRefs; tensor() checks one
// against its record and returns it. (libtorch's torch::load reads TorchScript archives only, not an
// OrderedDict, and trusts the file.)
//
//   mmlearn::TorchFile file("small.pt");  // OpenAI Whisper: {"dims": {...}, "model_state_dict": {...}}
//   int64_t n_mels = *file.root().find("dims")->find("n_mels")->get<int64_t>();
//   for (auto& [name, w] : mmlearn::read_state_dict("open_clip_pytorch_model.bin")) ...
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "mmlearn/core/pickle.h"
#include "mmlearn/core/zip_archive.h"

namespace mmlearn {

class TorchFile {
 public:
  explicit TorchFile(const std::filesystem::path& path, const PickleLimits& limits = {});

  const std::filesystem::path& path() const { return zip_.path(); }
  // The saved object; tensors in it are TensorRefs.
  const PickleValue& root() const { return root_; }
  // The tensor, on the CPU in its stored dtype. Like torch.load, it views its storage record, which is
  // copied out of the file once and shared by every tensor in it: tied weights stay tied, views keep their
  // strides (call .contiguous() where that matters), and memory never exceeds the file's size.
  torch::Tensor tensor(const TensorRef& ref) const;

 private:
  torch::Tensor load_storage(const std::string& record, const std::string& where, torch::Dtype dtype,
                             int64_t numel) const;

  ZipArchive zip_;
  std::string prefix_;  // "<archive>/", the directory of every record
  PickleValue root_;
  mutable std::mutex mutex_;  // guards storages_, so that tensor() may be called from several threads
  mutable std::map<std::string, torch::Tensor> storages_;  // records copied so far, by name
};

// The checkpoint's state dict, names in file order: the dict of tensors at the root, or else under
// "state_dict", "model_state_dict", "model" or "module".
std::vector<std::pair<std::string, torch::Tensor>> read_state_dict(const std::filesystem::path& path);
std::vector<std::pair<std::string, torch::Tensor>> read_state_dict(const TorchFile& file);

}  // namespace mmlearn
