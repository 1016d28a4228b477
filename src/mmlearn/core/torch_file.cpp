#include "mmlearn/core/torch_file.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <optional>

#include "mmlearn/core/error.h"

namespace mmlearn {
namespace fs = std::filesystem;

// Storage records hold elements as the saving machine laid them out; torch.save runs on little-endian ones.
static_assert(std::endian::native == std::endian::little, "torch checkpoints are read as little-endian");

namespace {

// torch's storage classes are named after c10's scalar types: HalfStorage holds c10::ScalarType::Half.
std::optional<torch::Dtype> storage_dtype(const std::string& name) {
  for (torch::Dtype dtype : {torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kBFloat16,
                             torch::kInt64, torch::kInt32, torch::kInt16, torch::kInt8, torch::kUInt8,
                             torch::kBool, torch::kComplexDouble, torch::kComplexFloat})
    if (name == c10::toString(dtype)) return dtype;
  return std::nullopt;
}

ZipArchive open_archive(const fs::path& path) {
  try {
    return ZipArchive(path);
  } catch (const Error&) {
    // Before torch 1.6, and with _use_new_zipfile_serialization=False, torch.save writes a bare pickle
    // stream, which starts with the PROTO opcode.
    if (std::ifstream(path, std::ios::binary).get() == 0x80)
      throw Error(
          str_cat(path.string(),
                  ": saved in the legacy format of torch < 1.6 (or _use_new_zipfile_serialization=False), "
                  "which is not supported: load it in Python and torch.save it again"));
    throw;
  }
}

// A dict of names to tensors, as state_dict() returns.
bool is_state_dict(const PickleValue* value) {
  const auto* dict = value != nullptr ? value->get<PickleDict>() : nullptr;
  if (dict == nullptr) return false;
  for (const auto& [key, item] : dict->items)
    if (!key.get<std::string>() || !item.get<TensorRef>()) return false;
  return true;
}

// What the root holds, for the error when it has no state dict.
std::string describe(const PickleValue& value) {
  const auto* dict = value.get<PickleDict>();
  if (dict == nullptr) return str_cat("the root is a ", value.kind());
  std::string keys;
  for (size_t i = 0; i < dict->items.size() && i < 16; ++i) {
    const auto& [key, item] = dict->items[i];
    const auto* name = key.get<std::string>();
    keys += str_cat(i ? ", " : "", name ? *name : str_cat(*key.get<int64_t>()), " (", item.kind(), ")");
  }
  return str_cat("the root is a dict of ", dict->items.size(), " items: ", keys,
                 dict->items.size() > 16 ? ", ..." : "");
}

}  // namespace

TorchFile::TorchFile(const fs::path& path, const PickleLimits& limits) : zip_(open_archive(path)) {
  const std::string where = path.string();
  check(!zip_.entries().empty(), where, ": empty zip archive, not a torch.save checkpoint");
  // All records share one directory: the file's name when it was saved, or "archive".
  const std::string& first = zip_.entries().front().name;
  prefix_ = first.substr(0, first.find('/') + 1);
  check(zip_.find(prefix_ + "constants.pkl") == nullptr, where,
        ": a TorchScript archive (torch.jit.save), which holds code besides weights: load it in Python "
        "and torch.save its state_dict() instead");
  const ZipEntry* pickle = zip_.find(prefix_ + "data.pkl");
  check(pickle != nullptr, where, ": a zip archive without ", prefix_,
        "data.pkl, so not a torch.save checkpoint");
  // torch 2 records the saving machine's byte order; without the record, assume little-endian like most.
  if (const ZipEntry* order = zip_.find(prefix_ + "byteorder")) {
    const std::string_view value = zip_.read(*order);
    check(value == "little", where, ": tensors are stored in byte order \"", value.substr(0, 16),
          "\"; only little-endian checkpoints are supported (save it again on an x86 or ARM machine)");
  }
  root_ = parse_pickle(zip_.read(*pickle), str_cat(where, ": ", pickle->name), limits);
}

torch::Tensor TorchFile::tensor(const TensorRef& ref) const {
  const std::string record = prefix_ + "data/" + ref.storage;
  const std::string where = str_cat(path().string(), ": ", record);
  const std::optional<torch::Dtype> dtype = storage_dtype(ref.dtype);
  check(dtype.has_value(), where, ": unsupported storage type ", ref.dtype, "Storage");

  const std::string view = str_cat("a tensor of size ", c10::IntArrayRef(ref.sizes), ", stride ",
                                   c10::IntArrayRef(ref.strides), " and offset ", ref.storage_offset);
  check(ref.sizes.size() == ref.strides.size(), where, ": ", view, ": size and stride differ in length");
  const auto negative = [](int64_t n) { return n < 0; };
  check(std::none_of(ref.sizes.begin(), ref.sizes.end(), negative) &&
            std::none_of(ref.strides.begin(), ref.strides.end(), negative) && ref.storage_offset >= 0 &&
            ref.storage_numel >= 0,
        where, ": ", view, ": negative size, stride or offset (corrupt or forged file)");
  // The view's element count, and the elements from its first to its last in the storage. Each term is below
  // 2^126 and neither sum grows once out of range, so 128 bits cannot overflow.
  const bool empty = std::find(ref.sizes.begin(), ref.sizes.end(), 0) != ref.sizes.end();
  __int128 numel = empty ? 0 : 1, span = numel;
  for (size_t i = 0; i < ref.sizes.size() && !empty; ++i) {
    if (numel <= INT64_MAX) numel *= ref.sizes[i];
    if (span <= ref.storage_numel) span += static_cast<__int128>(ref.sizes[i] - 1) * ref.strides[i];
  }
  check(numel <= INT64_MAX, where, ": ", view, " has more than 2^63 elements (corrupt or forged file)");
  check(ref.storage_offset + span <= ref.storage_numel, where, ": ", view, " reaches past the ",
        ref.storage_numel, " elements of its storage (corrupt or forged file)");
  return load_storage(record, where, *dtype, ref.storage_numel)
      .as_strided(ref.sizes, ref.strides, ref.storage_offset);
}

torch::Tensor TorchFile::load_storage(const std::string& record, const std::string& where, torch::Dtype dtype,
                                      int64_t numel) const {
  std::lock_guard<std::mutex> lock(mutex_);
  torch::Tensor& storage = storages_[record];
  if (!storage.defined()) {
    const ZipEntry* entry = zip_.find(record);
    check(entry != nullptr, path().string(), ": storage record ", record,
          " is missing (the file is truncated or corrupt)");
    const std::string_view bytes = zip_.read(*entry);
    const auto element_size = static_cast<int64_t>(c10::elementSize(dtype));
    check(static_cast<unsigned __int128>(numel) * element_size == bytes.size(), where, ": ", bytes.size(),
          " bytes, but the pickle declares ", numel, " elements of ", c10::toString(dtype), " (",
          element_size, " bytes each): the file is truncated or corrupt");
    storage = torch::empty({numel}, dtype);  // aligned, and owned: no tensor outlives its file's mapping
    if (!bytes.empty())
      std::memcpy(storage.data_ptr(), bytes.data(), bytes.size());  // else data_ptr() is null
    // A bool is one byte that must be 0 or 1; a forged file could hold other values.
    if (dtype == torch::kBool) storage = storage.view(torch::kUInt8).ne(0);
  }
  check(storage.scalar_type() == dtype && storage.numel() == numel, where, ": the pickle declares it as ",
        storage.numel(), " elements of ", c10::toString(storage.scalar_type()), " and as ", numel, " of ",
        c10::toString(dtype), " (corrupt or forged file)");
  return storage;
}

std::vector<std::pair<std::string, torch::Tensor>> read_state_dict(const fs::path& path) {
  return read_state_dict(TorchFile(path));
}

std::vector<std::pair<std::string, torch::Tensor>> read_state_dict(const TorchFile& file) {
  const fs::path& path = file.path();
  const PickleValue& root = file.root();
  const PickleValue* dict = is_state_dict(&root) ? &root : nullptr;
  for (const char* key : {"state_dict", "model_state_dict", "model", "module"})
    if (dict == nullptr && is_state_dict(root.find(key))) dict = root.find(key);
  check(dict != nullptr, path.string(),
        ": no state dict (a dict of names to tensors) at the root or under \"state_dict\", "
        "\"model_state_dict\", \"model\" or \"module\"; ",
        describe(root));
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [key, value] : dict->get<PickleDict>()->items) {
    const std::string& name = *key.get<std::string>();
    try {
      out.emplace_back(name, file.tensor(*value.get<TensorRef>()));
    } catch (const Error& e) {
      throw Error(str_cat(e.what(), " (tensor \"", name, "\")"));
    }
  }
  return out;
}

}  // namespace mmlearn
