#include "mmlearn/core/pickle.h"

#include <bit>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "mmlearn/core/error.h"

namespace mmlearn {
namespace {

constexpr size_t kMaxGlobalName = 256;  // real module and class names are far shorter

// Element types of the storage classes torch.save names in persistent ids ("torch.HalfStorage", ...).
// torch.storage.UntypedStorage, which torch >= 1.13 names for storages saved on their own, holds bytes.
std::optional<std::string> storage_dtype(const PickleGlobal& type) {
  constexpr std::string_view kTypes[] = {"Double", "Float", "Half",          "BFloat16",
                                         "Long",   "Int",   "Short",         "Char",
                                         "Byte",   "Bool",  "ComplexDouble", "ComplexFloat"};
  constexpr std::string_view kSuffix = "Storage";
  std::string_view name = type.name;
  if (name == "UntypedStorage" && (type.module == "torch" || type.module == "torch.storage")) return "Byte";
  if (type.module != "torch" || !name.ends_with(kSuffix)) return std::nullopt;
  name.remove_suffix(kSuffix.size());
  for (std::string_view t : kTypes)
    if (name == t) return std::string(name);
  return std::nullopt;
}

bool allowed_global(const PickleGlobal& g) {
  const std::string& m = g.module;
  const std::string& n = g.name;
  return (m == "collections" && n == "OrderedDict") ||
         (m == "torch._utils" &&
          (n == "_rebuild_tensor_v2" || n == "_rebuild_parameter" || n == "_rebuild_parameter_with_state")) ||
         (m == "_codecs" && n == "encode") || ((m == "__builtin__" || m == "builtins") && n == "bytes") ||
         storage_dtype(g).has_value();
}

// Names of the opcodes that build arbitrary objects, for the refusal message; others are shown in hex.
std::string opcode_name(uint8_t op) {
  static const std::unordered_map<uint8_t, std::string> kNames = {
      {0x81, "NEWOBJ"}, {0x92, "NEWOBJ_EX"}, {'i', "INST"},  {'o', "OBJ"},
      {0x82, "EXT1"},   {0x83, "EXT2"},      {0x84, "EXT4"}, {'P', "PERSID"}};
  if (auto it = kNames.find(op); it != kNames.end()) return it->second;
  constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[op >> 4] + kHex[op & 15];
}

class Unpickler {
 public:
  Unpickler(std::string_view data, const std::string& where, const PickleLimits& limits)
      : data_(data), where_(where), limits_(limits) {}

  PickleValue run();

 private:
  // A value on the stack or in the memo. Stack and memo share nodes, as Python shares objects, so a container
  // memoized when created and filled later is complete when fetched again.
  struct Node {
    PickleValue value;
    int depth = 0;                         // levels of containers, itself included
    uint64_t bytes = 0;                    // approximate memory of the value, to charge for copies
    std::unordered_set<std::string> keys;  // of a dict, to refuse duplicate keys
  };
  using NodePtr = std::shared_ptr<Node>;

  template <typename... Args>
  [[noreturn]] void fail(const Args&... message) const {
    throw Error(str_cat(where_, " offset ", opcode_at_, ": ", message...));
  }
  template <typename T>
  const T& expect(const PickleValue& v, std::string_view what) const {
    if (const T* value = v.get<T>()) return *value;
    fail(what, " must be a ", PickleValue{T{}}.kind(), ", not a ", v.kind());
  }

  void charge(uint64_t bytes);
  std::string_view read(uint64_t n);
  uint64_t read_le(int n);
  int64_t read_long(uint64_t n);
  uint64_t read_be64();
  std::string read_string(int length_bytes);
  std::string read_line();
  void check_protocol(uint64_t version) const;

  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  Node& top();
  NodePtr pop();
  std::vector<NodePtr> pop_n(size_t n);
  std::vector<NodePtr> pop_mark();
  void push(PickleValue value, int depth = 0);
  void push_tuple(std::vector<NodePtr> items);
  PickleValue adopt(Node& container, NodePtr item);

  void append(std::vector<NodePtr> items);
  void set_items(std::vector<NodePtr> items);
  void memoize(uint64_t index);
  void fetch(uint64_t index);
  PickleGlobal read_global();
  PickleGlobal stack_global();
  void push_global(PickleGlobal global);
  void build();
  void reduce();
  void persistent_load();
  TensorRef rebuild_tensor(const std::vector<PickleValue>& args) const;
  std::vector<int64_t> ints(const PickleValue& v, std::string_view what) const;
  PickleBytes latin1(const std::vector<PickleValue>& args) const;

  std::string_view data_;
  const std::string& where_;
  const PickleLimits& limits_;
  uint64_t pos_ = 0, opcode_at_ = 0, used_bytes_ = 0;
  std::vector<NodePtr> stack_;
  std::vector<size_t> marks_;  // stack sizes at each open MARK
  std::unordered_map<uint64_t, NodePtr> memo_;
};

void Unpickler::charge(uint64_t bytes) {
  used_bytes_ += bytes;
  if (used_bytes_ > limits_.max_memory_bytes)
    fail("the decoded values exceed ", limits_.max_memory_bytes >> 20,
         " MiB (PickleLimits::max_memory_bytes): the pickle is corrupt or hostile");
}

std::string_view Unpickler::read(uint64_t n) {
  if (n > data_.size() - pos_)
    fail("truncated pickle: ", n, " bytes needed but ", data_.size() - pos_, " remain");
  std::string_view out = data_.substr(pos_, n);
  pos_ += n;
  return out;
}

uint64_t Unpickler::read_le(int n) {
  std::string_view bytes = read(n);
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

// LONG1/LONG4: a little-endian two's-complement integer of n bytes.
int64_t Unpickler::read_long(uint64_t n) {
  if (n > 8) fail("integer of ", n, " bytes does not fit in 64 bits");
  uint64_t v = read_le(static_cast<int>(n));
  if (n > 0 && n < 8 && (v >> (8 * n - 1)) != 0) v |= ~uint64_t{0} << (8 * n);  // sign-extend
  return static_cast<int64_t>(v);
}

uint64_t Unpickler::read_be64() {
  uint64_t v = 0;
  for (char c : read(8)) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

// A string preceded by its length in `length_bytes` little-endian bytes.
std::string Unpickler::read_string(int length_bytes) { return std::string(read(read_le(length_bytes))); }

void Unpickler::check_protocol(uint64_t version) const {
  if (version > 5) fail("pickle protocol ", version, " is newer than this reader understands (5)");
}

std::string Unpickler::read_line() {
  const size_t end = data_.find('\n', pos_);
  if (end == std::string_view::npos) fail("truncated pickle: GLOBAL name without end of line");
  if (end - pos_ > kMaxGlobalName) fail("GLOBAL name longer than ", kMaxGlobalName, " bytes");
  std::string line(data_.substr(pos_, end - pos_));
  pos_ = end + 1;
  return line;
}

// GLOBAL: "module\nname\n".
PickleGlobal Unpickler::read_global() {
  std::string module = read_line();
  return {std::move(module), read_line()};
}

PickleGlobal Unpickler::stack_global() {
  NodePtr name = pop(), module = pop();
  return {expect<std::string>(module->value, "the module of STACK_GLOBAL"),
          expect<std::string>(name->value, "the name of STACK_GLOBAL")};
}

Unpickler::Node& Unpickler::top() {
  if (stack_.size() <= base()) fail("stack underflow (corrupt pickle)");
  return *stack_.back();
}

Unpickler::NodePtr Unpickler::pop() {
  top();
  NodePtr node = std::move(stack_.back());
  stack_.pop_back();
  return node;
}

std::vector<Unpickler::NodePtr> Unpickler::pop_n(size_t n) {
  if (stack_.size() - base() < n) fail("stack underflow (corrupt pickle)");
  std::vector<NodePtr> items(std::make_move_iterator(stack_.end() - n),
                             std::make_move_iterator(stack_.end()));
  stack_.resize(stack_.size() - n);
  return items;
}

std::vector<Unpickler::NodePtr> Unpickler::pop_mark() {
  if (marks_.empty()) fail("no MARK to close (corrupt pickle)");
  std::vector<NodePtr> items = pop_n(stack_.size() - marks_.back());
  marks_.pop_back();
  return items;
}

void Unpickler::push(PickleValue value, int depth) {
  uint64_t bytes = sizeof(Node);
  if (const auto* s = value.get<std::string>()) bytes += s->size();
  if (const auto* b = value.get<PickleBytes>()) bytes += b->data.size();
  if (const auto* t = value.get<TensorRef>()) bytes += t->storage.size() + 16 * t->sizes.size();
  if (const auto* g = value.get<PickleGlobal>()) bytes += g->module.size() + g->name.size();
  charge(bytes);
  stack_.push_back(std::make_shared<Node>(Node{std::move(value), depth, bytes, {}}));
}

// Moves an item into a container's node, copying it when the memo holds it too.
PickleValue Unpickler::adopt(Node& container, NodePtr item) {
  container.depth = std::max(container.depth, item->depth + 1);
  if (container.depth > limits_.max_depth)
    fail("containers nested deeper than ", limits_.max_depth, " levels (corrupt or hostile pickle)");
  container.bytes += item->bytes;
  if (item.use_count() == 1) return std::move(item->value);
  charge(item->bytes);
  return item->value;
}

void Unpickler::push_tuple(std::vector<NodePtr> items) {
  push({PickleTuple{}}, 1);
  Node& node = *stack_.back();
  auto& tuple = std::get<PickleTuple>(node.value.value).items;
  for (NodePtr& item : items) tuple.push_back(adopt(node, std::move(item)));
}

void Unpickler::append(std::vector<NodePtr> items) {
  Node& list = top();
  auto* target = std::get_if<PickleList>(&list.value.value);
  if (target == nullptr) fail("APPEND to a ", list.value.kind(), ": only lists can be appended to");
  for (NodePtr& item : items) target->items.push_back(adopt(list, std::move(item)));
}

void Unpickler::set_items(std::vector<NodePtr> items) {
  Node& dict = top();
  auto* target = std::get_if<PickleDict>(&dict.value.value);
  if (target == nullptr) fail("SETITEM on a ", dict.value.kind(), ": only dicts have items");
  if (items.size() % 2 != 0) fail("SETITEMS with an odd number of keys and values (corrupt pickle)");
  for (size_t i = 0; i < items.size(); i += 2) {
    PickleValue key = adopt(dict, std::move(items[i]));
    std::string id;
    if (const auto* s = key.get<std::string>())
      id = "'" + *s + "'";
    else if (const auto* n = key.get<int64_t>())
      id = std::to_string(*n);
    else
      fail("dict keys must be str or int, not ", key.kind());
    if (!dict.keys.insert(id).second) fail("dict key ", id, " appears twice (corrupt or forged pickle)");
    target->items.emplace_back(std::move(key), adopt(dict, std::move(items[i + 1])));
  }
}

void Unpickler::memoize(uint64_t index) {
  top();
  memo_[index] = stack_.back();
}

void Unpickler::fetch(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end()) fail("memo entry ", index, " is read before it is written (corrupt pickle)");
  charge(it->second->bytes);
  stack_.push_back(std::make_shared<Node>(*it->second));
}

void Unpickler::push_global(PickleGlobal global) {
  if (!allowed_global(global)) {
    const bool v3 = global.module == "torch._utils" && global.name == "_rebuild_tensor_v3";
    fail("refusing to load class ", global.module, ".", global.name,
         ": only tensors, dicts, lists, tuples, strings and numbers are allowed (nothing in a checkpoint is "
         "executed); ",
         v3 ? "this tensor has a dtype (uint16/32/64, float8, ...) libtorch 1.13 cannot hold"
            : "if the file holds a model object or other Python data, save model.state_dict() instead");
  }
  push({std::move(global)});
}

// BUILD sets an object's attributes. torch gives a state dict the attribute _metadata, which loading does
// not need; nothing else may have attributes.
void Unpickler::build() {
  pop();
  if (!top().value.get<PickleDict>())
    fail("BUILD sets attributes of a ", top().value.kind(), ": only an OrderedDict's are allowed");
}

void Unpickler::reduce() {
  NodePtr args_node = pop();
  NodePtr callable = pop();
  const auto& f = expect<PickleGlobal>(callable->value, "the callable of REDUCE");
  const auto& args = expect<PickleTuple>(args_node->value, "the arguments of REDUCE").items;
  const std::string name = f.module + "." + f.name;
  if (name == "collections.OrderedDict") {
    if (!args.empty()) fail("OrderedDict is called with arguments (corrupt pickle)");
    push({PickleDict{}}, 1);
  } else if (name == "torch._utils._rebuild_tensor_v2") {
    push({rebuild_tensor(args)});
  } else if (name == "torch._utils._rebuild_parameter" ||
             name == "torch._utils._rebuild_parameter_with_state") {
    // (data, requires_grad, backward_hooks[, state]): a Parameter is its data; Python attributes are ignored.
    if (args.size() != 3 && args.size() != 4) fail(name, " takes 3 or 4 arguments, not ", args.size());
    TensorRef tensor = expect<TensorRef>(args[0], "the data of a Parameter");
    tensor.requires_grad = expect<bool>(args[1], "requires_grad");
    push({std::move(tensor)});
  } else if (name == "_codecs.encode") {
    push({latin1(args)});
  } else if (name == "__builtin__.bytes" || name == "builtins.bytes") {  // protocol 2's b""
    if (!args.empty()) fail("bytes is called with arguments; pickle writes only bytes() that way");
    push({PickleBytes{}});
  } else {
    fail("cannot call ", name, ": it is a storage class");
  }
}

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
// [, metadata]); the storage is the TensorRef spanning the whole storage that persistent_load made.
TensorRef Unpickler::rebuild_tensor(const std::vector<PickleValue>& args) const {
  if (args.size() != 6 && args.size() != 7)
    fail("_rebuild_tensor_v2 takes 6 or 7 arguments, not ", args.size());
  TensorRef t = expect<TensorRef>(args[0], "the storage of a tensor");
  t.storage_offset = expect<int64_t>(args[1], "the storage offset of a tensor");
  t.sizes = ints(args[2], "the size of a tensor");
  t.strides = ints(args[3], "the stride of a tensor");
  t.requires_grad = expect<bool>(args[4], "requires_grad");
  expect<PickleDict>(args[5], "backward_hooks");
  if (args.size() == 7) {
    // {"conj": True} or {"neg": True} marks a lazily conjugated or negated view; materialize on save instead.
    for (const auto& [key, value] : expect<PickleDict>(args[6], "tensor metadata").items)
      if (!value.get<bool>() || *value.get<bool>())
        fail("tensor metadata sets '", expect<std::string>(key, "a metadata key"),
             "', which is not supported: save tensor.resolve_conj().resolve_neg() instead");
  }

  return t;
}

std::vector<int64_t> Unpickler::ints(const PickleValue& v, std::string_view what) const {
  std::vector<int64_t> out;
  for (const PickleValue& item : expect<PickleTuple>(v, what).items)
    out.push_back(expect<int64_t>(item, what));
  return out;
}

// _codecs.encode(text, "latin1"): how protocol 2 writes bytes. The text's code points are the bytes.
PickleBytes Unpickler::latin1(const std::vector<PickleValue>& args) const {
  if (args.size() != 2 || expect<std::string>(args[1], "the encoding of _codecs.encode") != "latin1")
    fail("_codecs.encode is only allowed as (text, 'latin1'), which is how pickle writes bytes");
  const std::string& text = expect<std::string>(args[0], "the text of _codecs.encode");
  PickleBytes out;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c < 0x80) {
      out.data += static_cast<char>(c);
    } else if ((c == 0xc2 || c == 0xc3) && i + 1 < text.size() && (text[i + 1] & 0xc0) == 0x80) {
      out.data += static_cast<char>(((c & 0x1f) << 6) | (text[++i] & 0x3f));  // U+0080..U+00FF in UTF-8
    } else {
      fail("the text of _codecs.encode is not latin-1 (corrupt pickle)");
    }
  }
  return out;
}

// ('storage', torch.<Type>Storage, key, location, numel): a storage record of the archive. It becomes the
// one-dimensional tensor over all of it, which _rebuild_tensor_v2 narrows to a view.
void Unpickler::persistent_load() {
  NodePtr node = pop();
  const auto& id = expect<PickleTuple>(node->value, "a persistent id").items;
  if (id.size() != 5 || !id[0].get<std::string>() || *id[0].get<std::string>() != "storage")
    fail("persistent ids must be ('storage', type, key, location, numel), as torch.save writes them");
  const auto& type = expect<PickleGlobal>(id[1], "the storage type");
  std::optional<std::string> dtype = storage_dtype(type);
  if (!dtype) fail(type.module, ".", type.name, " is not a storage class");
  TensorRef t;
  t.dtype = *dtype;
  t.storage = expect<std::string>(id[2], "the storage key");
  expect<std::string>(id[3], "the storage location");  // the device it was saved from; all load on the CPU
  t.storage_numel = expect<int64_t>(id[4], "the storage size");
  if (t.storage_numel < 0) fail("storage '", t.storage, "' has negative size ", t.storage_numel);
  t.sizes = {t.storage_numel};
  t.strides = {1};
  push({std::move(t)});
}

PickleValue Unpickler::run() {
  // The opcodes of protocols 2 to 4 that plain data needs (Python's pickletools documents each one); any
  // other opcode is refused.
  using Op = void (*)(Unpickler&);
  static const std::unordered_map<uint8_t, Op> kOps = {
      {0x80, [](Unpickler& u) { u.check_protocol(u.read_le(1)); }},  // PROTO
      {0x95, [](Unpickler& u) { u.read(8); }},                       // FRAME, a size hint
      {'N', [](Unpickler& u) { u.push({}); }},                       // NONE
      {0x88, [](Unpickler& u) { u.push({true}); }},                  // NEWTRUE
      {0x89, [](Unpickler& u) { u.push({false}); }},                 // NEWFALSE
      {'J', [](Unpickler& u) { u.push({int64_t{static_cast<int32_t>(u.read_le(4))}}); }},  // BININT
      {'K', [](Unpickler& u) { u.push({static_cast<int64_t>(u.read_le(1))}); }},           // BININT1
      {'M', [](Unpickler& u) { u.push({static_cast<int64_t>(u.read_le(2))}); }},           // BININT2
      {0x8a, [](Unpickler& u) { u.push({u.read_long(u.read_le(1))}); }},                   // LONG1
      {0x8b, [](Unpickler& u) { u.push({u.read_long(u.read_le(4))}); }},                   // LONG4
      {'G', [](Unpickler& u) { u.push({std::bit_cast<double>(u.read_be64())}); }},         // BINFLOAT
      {0x8c, [](Unpickler& u) { u.push({u.read_string(1)}); }},                            // SHORT_BINUNICODE
      {'X', [](Unpickler& u) { u.push({u.read_string(4)}); }},                             // BINUNICODE
      {0x8d, [](Unpickler& u) { u.push({u.read_string(8)}); }},                            // BINUNICODE8
      {'C', [](Unpickler& u) { u.push({PickleBytes{u.read_string(1)}}); }},                // SHORT_BINBYTES
      {'B', [](Unpickler& u) { u.push({PickleBytes{u.read_string(4)}}); }},                // BINBYTES
      {0x8e, [](Unpickler& u) { u.push({PickleBytes{u.read_string(8)}}); }},               // BINBYTES8
      {')', [](Unpickler& u) { u.push({PickleTuple{}}, 1); }},                             // EMPTY_TUPLE
      {']', [](Unpickler& u) { u.push({PickleList{}}, 1); }},                              // EMPTY_LIST
      {'}', [](Unpickler& u) { u.push({PickleDict{}}, 1); }},                              // EMPTY_DICT
      {'(', [](Unpickler& u) { u.marks_.push_back(u.stack_.size()); }},                    // MARK
      {'t', [](Unpickler& u) { u.push_tuple(u.pop_mark()); }},                             // TUPLE
      {0x85, [](Unpickler& u) { u.push_tuple(u.pop_n(1)); }},                              // TUPLE1
      {0x86, [](Unpickler& u) { u.push_tuple(u.pop_n(2)); }},                              // TUPLE2
      {0x87, [](Unpickler& u) { u.push_tuple(u.pop_n(3)); }},                              // TUPLE3
      {'a', [](Unpickler& u) { u.append(u.pop_n(1)); }},                                   // APPEND
      {'e', [](Unpickler& u) { u.append(u.pop_mark()); }},                                 // APPENDS
      {'s', [](Unpickler& u) { u.set_items(u.pop_n(2)); }},                                // SETITEM
      {'u', [](Unpickler& u) { u.set_items(u.pop_mark()); }},                              // SETITEMS
      {'q', [](Unpickler& u) { u.memoize(u.read_le(1)); }},                                // BINPUT
      {'r', [](Unpickler& u) { u.memoize(u.read_le(4)); }},                                // LONG_BINPUT
      {0x94, [](Unpickler& u) { u.memoize(u.memo_.size()); }},                             // MEMOIZE
      {'h', [](Unpickler& u) { u.fetch(u.read_le(1)); }},                                  // BINGET
      {'j', [](Unpickler& u) { u.fetch(u.read_le(4)); }},                                  // LONG_BINGET
      {'c', [](Unpickler& u) { u.push_global(u.read_global()); }},                         // GLOBAL
      {0x93, [](Unpickler& u) { u.push_global(u.stack_global()); }},                       // STACK_GLOBAL
      {'R', [](Unpickler& u) { u.reduce(); }},                                             // REDUCE
      {'b', [](Unpickler& u) { u.build(); }},                                              // BUILD
      {'Q', [](Unpickler& u) { u.persistent_load(); }},                                    // BINPERSID
  };
  while (true) {
    opcode_at_ = pos_;
    const auto op = static_cast<uint8_t>(read(1)[0]);
    if (op == '.') return std::move(pop()->value);  // STOP
    auto it = kOps.find(op);
    if (it == kOps.end())
      fail("unsupported pickle opcode ", opcode_name(op),
           ": only the opcodes torch.save uses for plain data are allowed (nothing in a checkpoint is "
           "executed)");
    it->second(*this);
  }
}

}  // namespace

const PickleValue* PickleValue::find(std::string_view key) const {
  if (const auto* dict = get<PickleDict>())
    for (const auto& [k, v] : dict->items)
      if (const auto* s = k.get<std::string>(); s && *s == key) return &v;
  return nullptr;
}

const char* PickleValue::kind() const {
  static constexpr const char* kKinds[] = {"None", "bool",  "int",  "float",  "str",   "bytes",
                                           "list", "tuple", "dict", "tensor", "global"};
  return kKinds[value.index()];
}

PickleValue parse_pickle(std::string_view data, const std::string& where, const PickleLimits& limits) {
  return Unpickler(data, where, limits).run();
}

}  // namespace mmlearn
