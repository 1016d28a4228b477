#include "mmlearn/core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct DtypeInfo {
  const char* name;
  torch::Dtype dtype;
  int size;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

}  // namespace

torch::Dtype safetensors_dtype(const std::string& name) {
  const DtypeInfo* d = find_dtype(name);
  check(d != nullptr, "unsupported safetensors dtype \"", name, "\"");
  return d->dtype;
}

std::string safetensors_dtype_name(torch::Dtype dtype) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d.name;
  throw Error(str_cat("cannot store dtype ", c10::toString(dtype), " in safetensors"));
}

struct SafetensorsFile::Mapping {
  void* address = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (address != MAP_FAILED) ::munmap(address, size);
  }
};

SafetensorsFile::SafetensorsFile(const fs::path& path, const SafetensorsLimits& limits) : path_(path) {
  const std::string where = path.string();
  int fd = ::open(path.c_str(), O_RDONLY);
  check(fd >= 0, "cannot open ", where, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(str_cat(where, ": not a regular file"));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw Error(str_cat(where, ": truncated safetensors file (", file_size,
                        " bytes; the 8-byte header length is missing)"));
  }
  mapping_ = std::make_shared<Mapping>();
  mapping_->size = file_size;
  // Private mapping: a caller that writes into a returned tensor gets its own copy of the page.
  mapping_->address = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  check(mapping_->address != MAP_FAILED, "cannot map ", where, ": ", std::strerror(errno));
  const auto* bytes = static_cast<const uint8_t*>(mapping_->address);

  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
  check(header_size <= limits.max_header_bytes, where, ": header length ", header_size,
        " exceeds the limit of ", limits.max_header_bytes, " bytes (corrupt or hostile file)");
  check(header_size <= file_size - 8, where, ": header length ", header_size,
        " runs past the end of the file (", file_size, " bytes): the file is truncated or not safetensors");
  data_ = bytes + 8 + header_size;
  const uint64_t data_size = file_size - 8 - header_size;

  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + header_size);
  } catch (const json::exception& e) {
    throw Error(str_cat(where, ": header is not valid JSON (", e.what(), ")"));
  }
  check(header.is_object(), where, ": header must be a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& value = it.value();
    if (name == "__metadata__") {
      check(value.is_object(), where, ": __metadata__ must be an object of strings");
      for (auto m = value.begin(); m != value.end(); ++m) {
        check(m.value().is_string(), where, ": __metadata__.", m.key(), " must be a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string field = str_cat(where, ": tensor \"", name, "\"");
    check(value.is_object(), field, ": entry must be an object");
    check(value.contains("dtype") && value["dtype"].is_string(), field, ": missing string field \"dtype\"");
    check(value.contains("shape") && value["shape"].is_array(), field, ": missing array field \"shape\"");
    check(value.contains("data_offsets") && value["data_offsets"].is_array() &&
              value["data_offsets"].size() == 2,
          field, ": \"data_offsets\" must be [begin, end]");
    TensorEntry entry;
    entry.name = name;
    entry.dtype = value["dtype"].get<std::string>();
    const DtypeInfo* dtype = find_dtype(entry.dtype);
    check(dtype != nullptr, field, ": unsupported dtype \"", entry.dtype, "\"");
    check(static_cast<int>(value["shape"].size()) <= limits.max_rank, field, ": rank ", value["shape"].size(),
          " exceeds ", limits.max_rank);
    unsigned __int128 bytes_needed = dtype->size;
    for (const json& dim : value["shape"]) {
      check(dim.is_number_unsigned(), field, ": shape entries must be non-negative integers");
      entry.shape.push_back(static_cast<int64_t>(dim.get<uint64_t>()));
      check(entry.shape.back() >= 0, field, ": dimension out of range");
      bytes_needed *= dim.get<uint64_t>();
      check(bytes_needed <= data_size, field, ": shape ", value["shape"].dump(),
            " needs more bytes than the file has");
    }
    for (const json& offset : value["data_offsets"])
      check(offset.is_number_unsigned(), field, ": data_offsets must be non-negative integers");
    entry.begin = value["data_offsets"][0].get<uint64_t>();
    entry.end = value["data_offsets"][1].get<uint64_t>();
    check(entry.begin <= entry.end && entry.end <= data_size, field, ": data_offsets [", entry.begin, ", ",
          entry.end, "] out of range (data buffer is ", data_size, " bytes; file truncated?)");
    check(entry.end - entry.begin == static_cast<uint64_t>(bytes_needed), field, ": data_offsets span ",
          entry.end - entry.begin, " bytes but shape ", value["shape"].dump(), " of ", entry.dtype, " needs ",
          static_cast<uint64_t>(bytes_needed));
    index_[name] = entries_.size();
    entries_.push_back(std::move(entry));
  }

  // Tensors must tile the data buffer exactly: no overlap (aliasing) and no hidden bytes.
  std::vector<const TensorEntry*> sorted;
  for (const auto& e : entries_) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t cursor = 0;
  for (const TensorEntry* e : sorted) {
    check(e->begin >= cursor, where, ": tensor \"", e->name, "\" overlaps the previous tensor (offset ",
          e->begin, " < ", cursor, ")");
    check(e->begin == cursor, where, ": gap of ", e->begin - cursor, " bytes before tensor \"", e->name,
          "\"");
    cursor = e->end;
  }
  check(cursor == data_size, where, ": ", data_size - cursor, " trailing bytes after the last tensor");
}

const TensorEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  check(it != index_.end(), path_.string(), ": no tensor named \"", name, "\"");
  return entries_[it->second];
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorEntry& e = entry(name);
  const DtypeInfo* d = find_dtype(e.dtype);
  void* ptr = const_cast<uint8_t*>(data_ + e.begin);
  auto options = torch::TensorOptions().dtype(d->dtype);
  if (reinterpret_cast<uintptr_t>(ptr) % d->size != 0)  // kernels assume aligned elements
    return torch::from_blob(ptr, e.shape, options).clone();
  auto keep = mapping_;
  return torch::from_blob(
      ptr, e.shape, [keep](void*) {}, options);
}

TensorMap load_safetensors(const fs::path& path) {
  SafetensorsFile file(path);
  TensorMap out;
  for (const auto& e : file.entries()) out[e.name] = file.tensor(e.name);
  return out;
}

void save_safetensors(const fs::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data buffer 8-byte aligned
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  AtomicFile out(path);
  out.write(length, 8);
  out.write(text);
  for (const auto& c : data) out.write(c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size());
  out.commit();
}

}  // namespace mmlearn
