// A restricted decoder for the Python pickles in torch.save checkpoints (the archive's data.pkl).
//
// A pickle is a program: its GLOBAL and REDUCE opcodes import and call arbitrary Python functions, which is
// how a malicious checkpoint runs code in Python's torch.load. This decoder runs nothing. It knows the few
// callables that checkpoints of plain data use (collections.OrderedDict; torch._utils._rebuild_tensor_v2 and
// _rebuild_parameter; the torch.*Storage classes; _codecs.encode and bytes, with which protocol 2 writes
// bytes) and evaluates them itself. Any other class or function, and every opcode that builds objects, is
// refused with an error naming it. Storages come from the persistent ids torch.save writes,
// ('storage', torch.<Type>Storage, key, location, numel), and tensors become TensorRefs; their bytes stay in
// the archive, where TorchFile::tensor (torch_file.h) checks the view against them. Protocols 2 to 4 are
// understood, which covers torch.save since torch 1.6 (it writes protocol 2 unless told otherwise).
//
//   mmlearn::PickleValue root = mmlearn::parse_pickle(bytes, "model.pt: archive/data.pkl");
//   if (const mmlearn::PickleValue* dims = root.find("dims")) ...
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mmlearn {

// A tensor as the pickle describes it: a strided view of elements in a storage record of the archive.
struct TensorRef {
  std::string storage;  // record key: the bytes are in <archive>/data/<storage>
  std::string dtype;    // element type from torch's storage class: "Float", "Half", "BFloat16", "Long", ...
  int64_t storage_numel = 0;  // elements in the storage
  int64_t storage_offset = 0;
  std::vector<int64_t> sizes, strides;
  bool requires_grad = false;
};

struct PickleValue;
struct PickleBytes {
  std::string data;
};
struct PickleList {
  std::vector<PickleValue> items;
};
struct PickleTuple {
  std::vector<PickleValue> items;
};
struct PickleDict {  // dict or OrderedDict: keys are str or int, unique, in file order
  std::vector<std::pair<PickleValue, PickleValue>> items;
};
struct PickleGlobal {  // a reference to one of the allowed classes or functions, never resolved
  std::string module, name;
};

struct PickleValue {
  std::variant<std::monostate, bool, int64_t, double, std::string, PickleBytes, PickleList, PickleTuple,
               PickleDict, TensorRef, PickleGlobal>
      value;  // std::monostate is Python's None

  template <typename T>
  const T* get() const {
    return std::get_if<T>(&value);
  }
  // The value under the str key `key` when this is a dict that has it, else nullptr.
  const PickleValue* find(std::string_view key) const;
  // Python's name for the kind of value ("dict", "str", ...; "tensor" for a TensorRef), for messages.
  const char* kind() const;
};

struct PickleLimits {
  int max_depth = 256;                       // containers nested in containers
  uint64_t max_memory_bytes = 512ull << 20;  // decoded values, counting every copy of shared ones
};

// Decodes a pickle. `where` names it in errors ("model.pt: archive/data.pkl"), which also give the offset.
PickleValue parse_pickle(std::string_view data, const std::string& where, const PickleLimits& limits = {});

}  // namespace mmlearn
