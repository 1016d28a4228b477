#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/pickle.h"
#include "mmlearn/core/torch_file.h"
#include "mmlearn/core/zip_archive.h"

using namespace mmlearn;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

// Pickle opcodes written by hand, for the decoder's own tests.
std::string u32(uint32_t v) {
  return {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
          static_cast<char>(v >> 24)};
}
std::string str(const std::string& s) { return "X" + u32(s.size()) + s; }
std::string global(const std::string& module, const std::string& name) {
  return "c" + module + "\n" + name + "\n";
}
std::string ordered_dict() { return global("collections", "OrderedDict") + ")R"; }
// _rebuild_tensor_v2 over storage "0" of 6 Half elements: offset 1, size (2, 2), stride (2, 1).
std::string half_tensor() {
  return global("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") +
         global("torch", "HalfStorage") + str("0") + str("cpu") +
         "K\x06tQK\x01K\x02K\x02\x86K\x02K\x01\x86\x89" + ordered_dict() + "tR";
}

PickleValue parse(const std::string& body, const PickleLimits& limits = {}) {
  return parse_pickle("\x80\x02" + body + ".", "test.pkl", limits);
}

std::string pickle_error(const std::string& body, const PickleLimits& limits = {}) {
  try {
    parse(body, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

using test::error_of;

const PickleValue& item(const PickleValue& v, size_t i) {
  if (const auto* list = v.get<PickleList>()) return list->items.at(i);
  return v.get<PickleTuple>()->items.at(i);
}

}  // namespace

TEST(Pickle, DecodesScalarsAndContainers) {
  auto v =
      parse("](K\x01J\xff\xff\xff\xff\x8a\x02\x00\x80\x8a\x00G\x40\x0c\x00\x00\x00\x00\x00\x00"s + str("hi") +
            "N\x88\x89K\x07\x85}q\x00"s + str("a") + "K\x02sh\x00"s + global("_codecs", "encode") +
            str("\xc3\xbf\x01") + str("latin1") + "\x86R" + global("__builtin__", "bytes") + ")Re");
  const auto& list = v.get<PickleList>()->items;
  ASSERT_EQ(list.size(), 14u);
  EXPECT_EQ(*item(v, 0).get<int64_t>(), 1);
  EXPECT_EQ(*item(v, 1).get<int64_t>(), -1);
  EXPECT_EQ(*item(v, 2).get<int64_t>(), -32768);  // LONG1 is two's complement
  EXPECT_EQ(*item(v, 3).get<int64_t>(), 0);
  EXPECT_EQ(*item(v, 4).get<double>(), 3.5);
  EXPECT_EQ(*item(v, 5).get<std::string>(), "hi");
  EXPECT_TRUE(item(v, 6).get<std::monostate>());
  EXPECT_TRUE(*item(v, 7).get<bool>());
  EXPECT_FALSE(*item(v, 8).get<bool>());
  EXPECT_EQ(*item(item(v, 9), 0).get<int64_t>(), 7);
  // The memoized dict is filled after BINPUT; BINGET must still see it complete.
  for (size_t i : {10, 11}) {
    ASSERT_NE(item(v, i).find("a"), nullptr);
    EXPECT_EQ(*item(v, i).find("a")->get<int64_t>(), 2);
    EXPECT_EQ(item(v, i).find("b"), nullptr);
  }
  EXPECT_EQ(item(v, 12).get<PickleBytes>()->data, "\xff\x01");
  EXPECT_EQ(item(v, 13).get<PickleBytes>()->data, "");
  EXPECT_STREQ(v.kind(), "list");
}

TEST(Pickle, DecodesProtocol4Opcodes) {
  // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, SHORT_BINBYTES, BINUNICODE8.
  auto v = parse_pickle(
      "\x80\x04\x95\x40\x00\x00\x00\x00\x00\x00\x00\x8c\x0b"
      "collections\x94\x8c\x0b"
      "OrderedDict"
      "\x94\x93\x94)R\x94(\x8c\x01k\x94"
      "C\x02"
      "ab\x8c\x02k2\x8d\x01\x00\x00\x00\x00\x00\x00\x00zu."s,
      "p4.pkl");
  ASSERT_TRUE(v.get<PickleDict>());
  EXPECT_EQ(v.find("k")->get<PickleBytes>()->data, "ab");
  EXPECT_EQ(*v.find("k2")->get<std::string>(), "z");
}

TEST(Pickle, BuildsTensorRefsFromPersistentIds) {
  auto v = parse("}(" + str("w") + half_tensor() + str("p") + global("torch._utils", "_rebuild_parameter") +
                 "(" + half_tensor() + "\x88" + ordered_dict() + "tRu" + "}" + str("_metadata") + "}sb");
  const TensorRef& w = *v.find("w")->get<TensorRef>();
  EXPECT_EQ(w.storage, "0");
  EXPECT_EQ(w.dtype, "Half");
  EXPECT_EQ(w.storage_numel, 6);
  EXPECT_EQ(w.storage_offset, 1);
  EXPECT_EQ(w.sizes, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(w.strides, (std::vector<int64_t>{2, 1}));
  EXPECT_FALSE(w.requires_grad);
  EXPECT_TRUE(v.find("p")->get<TensorRef>()->requires_grad);  // nn.Parameter
  EXPECT_STREQ(v.find("w")->kind(), "tensor");
}

TEST(Pickle, RefusesCodeAndObjects) {
  const std::pair<std::string, std::string> cases[] = {
      {global("os", "system") + str("echo pwned") + "\x85R", "refusing to load class os.system"},
      {"\x8c\x08"
       "builtins\x8c\x04"
       "eval\x93",
       "refusing to load class builtins.eval"},
      {global("collections", "OrderedDict") + ")\x81", "NEWOBJ"},
      {"(iposix\nsystem\n", "INST"},
      {"\x82\x01", "EXT1"},
      {"(" + global("torch._utils", "_rebuild_tensor_v3"), "libtorch 1.13 cannot hold"},
      {global("torch", "FloatStorage") + ")R", "cannot call torch.FloatStorage"},
      {"))R", "the callable of REDUCE must be a global, not a tuple"},
      {"]}b", "BUILD sets attributes of a list"},
      {str("module") + str("x") + "\x86Q", "persistent ids must be ('storage'"},
      {"(" + str("storage") + global("collections", "OrderedDict") + str("0") + str("cpu") + "K\x01tQ",
       "collections.OrderedDict is not a storage class"},
      {global("_codecs", "encode") + str("x") + str("utf-8") + "\x86R", "(text, 'latin1')"},
  };
  for (const auto& [body, expected] : cases) {
    const std::string error = pickle_error(body);
    EXPECT_NE(error.find(expected), std::string::npos) << error;
  }
  // A tensor whose metadata marks a lazily negated view.
  auto neg =
      pickle_error(global("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") +
                   global("torch", "FloatStorage") + str("0") + str("cpu") +
                   "K\x01tQK\x00K\x01\x85K\x01\x85\x89"s + ordered_dict() + "}" + str("neg") + "\x88stR");
  EXPECT_NE(neg.find("resolve_conj"), std::string::npos) << neg;
  // Errors name the pickle and the offset of the opcode.
  EXPECT_EQ(pickle_error(global("os", "system")).rfind("test.pkl offset 2: ", 0), 0u);
}

TEST(Pickle, RefusesMalformedInput) {
  const std::pair<std::string, std::string> cases[] = {
      {"h\x05", "memo entry 5 is read before it is written"},
      {"a", "stack underflow"},
      {"K\x01"
       "a",
       "stack underflow"},
      {"](K\x01"
       "a",
       "stack underflow"},  // APPEND cannot reach below its MARK
      {"\xff", "unsupported pickle opcode 0xff"},
      {"X\xff\xff\x00\x00"
       "ab"s,
       "truncated pickle"},
      {"\x8a\x09" + std::string(9, '\x01'), "does not fit in 64 bits"},
      {"}(" + str("a") + "K\x01" + str("a") + "K\x02u", "dict key 'a' appears twice"},
      {"}(K\x01u", "odd number"},
      {"}(]K\x01u", "dict keys must be str or int, not list"},
      {"}K\x01"
       "a",
       "only lists can be appended to"},
      {"K\x01t", "no MARK"},
      {"cos", "without end of line"},
      {"]q\x00\x80\x06"s, "protocol 6"},
      {"((K\x01t" + global("torch._utils", "_rebuild_tensor_v2") + ")R", "takes 6 or 7 arguments"},
  };
  for (const auto& [body, expected] : cases) {
    const std::string error = pickle_error(body);
    EXPECT_NE(error.find(expected), std::string::npos) << error;
  }
  // A pickle without STOP, and an empty one.
  EXPECT_NE(error_of([] { parse_pickle("\x80\x02K\x01"s, "x"); }).find("truncated"), std::string::npos);
  EXPECT_NE(error_of([] { parse_pickle("", "x"); }).find("truncated"), std::string::npos);
}

TEST(Pickle, BoundsNestingAndMemory) {
  // 100000 nested lists: refused at the depth limit instead of overflowing the stack.
  auto deep = pickle_error(std::string(100000, ']') + std::string(99999, 'a'));
  EXPECT_NE(deep.find("nested deeper than 256 levels"), std::string::npos) << deep;
  EXPECT_NE(pickle_error("]]]aa", {.max_depth = 2}).find("deeper than 2"), std::string::npos);
  EXPECT_EQ(pickle_error("]]]aa", {.max_depth = 3}), "(no error)");
  // Each level pairs two copies of the previous one: 2^60 values from 423 bytes.
  std::string laughs = "]q\x00"s;
  for (int i = 0; i < 60; ++i) laughs += "h\x00h\x00\x86q\x00"s;
  auto bomb = pickle_error(laughs);
  EXPECT_NE(bomb.find("exceed 512 MiB"), std::string::npos) << bomb;
  EXPECT_NE(pickle_error(laughs, {.max_memory_bytes = 1 << 20}).find("exceed 1 MiB"), std::string::npos);
}

TEST(Pickle, EveryTruncationIsAnError) {
  const std::string full = "\x80\x02}(" + str("w") + half_tensor() + "u.";
  ASSERT_NO_THROW(parse_pickle(full, "full"));
  for (size_t n = 0; n < full.size(); ++n)
    EXPECT_THROW(parse_pickle(std::string_view(full).substr(0, n), "cut"), Error) << "length " << n;
}

TEST(ZipArchive, RejectsWhatIsNotAnArchive) {
  auto dir = test::temp_dir("zip");
  EXPECT_NE(error_of([&] { ZipArchive(dir / "missing.pt"); }).find("cannot open"), std::string::npos);
  EXPECT_NE(error_of([&] { ZipArchive{dir}; }).find("not a regular file"), std::string::npos);
  std::ofstream(dir / "empty.pt").close();
  EXPECT_NE(error_of([&] { ZipArchive(dir / "empty.pt"); }).find("only 0 bytes"), std::string::npos);
  std::ofstream(dir / "text.pt") << std::string(100000, 'x');
  EXPECT_NE(error_of([&] { ZipArchive(dir / "text.pt"); }).find("no end-of-central-directory record"),
            std::string::npos);
  // An end record that points its central directory past the end of the file.
  std::ofstream(dir / "forged.pt", std::ios::binary)
      << "PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00\x2e\x00\x00\x00\xff\xff\xff\x00\x00\x00"s;
  auto forged = error_of([&] { ZipArchive(dir / "forged.pt"); });
  EXPECT_NE(forged.find("lies outside the file"), std::string::npos) << forged;
}

// Checkpoints written by the Python fixture script, generated once per version of the script: ctest runs
// every test in its own process.
class TorchFileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path script = test::source_dir() / "tests" / "fixtures" / "torch_save_fixtures.py";
    std::ifstream in(script);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    dir_ = fs::temp_directory_path() / "mmlearn-tests" /
           ("torch_save_fixtures." + std::to_string(std::hash<std::string>{}(text)));
    if (!fs::exists(dir_ / "expected.json")) {
      fs::path scratch = dir_;
      scratch += "." + std::to_string(::getpid());
      const bool ok =
          std::system(("/usr/bin/python3 " + script.string() + " " + scratch.string()).c_str()) == 0;
      std::error_code ignored;
      if (ok) fs::rename(scratch, dir_, ignored);  // fails when another process was first: use its files
      fs::remove_all(scratch, ignored);
    }
    generated_ = fs::exists(dir_ / "expected.json");
    expected_ = nlohmann::json::parse(std::ifstream(dir_ / "expected.json"), nullptr, false);
  }
  void SetUp() override {
    ASSERT_TRUE(generated_) << "tests/fixtures/torch_save_fixtures.py failed: it needs /usr/bin/python3 with "
                               "torch (Debian: python3-torch)";
    ASSERT_TRUE(expected_.is_object()) << "no expected.json in " << dir_;
  }
  static fs::path file(const std::string& name) { return dir_ / name; }
  static const nlohmann::json& expected(const std::string& name) { return expected_.at(name); }

  // Compares tensors with the Python side's description: names in order, dtype, shape, values.
  static void expect_matches(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                             const nlohmann::json& spec) {
    ASSERT_EQ(tensors.size(), spec.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& [name, t] = tensors[i];
      const auto& s = spec[i];
      SCOPED_TRACE(name);
      EXPECT_EQ(name, s["name"].get<std::string>());
      EXPECT_EQ(c10::toString(t.scalar_type()), s["dtype"].get<std::string>());
      EXPECT_EQ(t.sizes().vec(), s["shape"].get<std::vector<int64_t>>());
      torch::Tensor flat = (t.is_complex() ? torch::view_as_real(t) : t).flatten();
      if (t.is_floating_point() || t.is_complex())
        EXPECT_TRUE(torch::equal(flat.to(torch::kFloat64),
                                 torch::tensor(s["values"].get<std::vector<double>>(), torch::kFloat64)));
      else if (t.scalar_type() == torch::kBool)
        EXPECT_EQ(std::vector<bool>(flat.data_ptr<bool>(), flat.data_ptr<bool>() + flat.numel()),
                  s["values"].get<std::vector<bool>>());
      else
        EXPECT_TRUE(
            torch::equal(flat.to(torch::kInt64), torch::tensor(s["values"].get<std::vector<int64_t>>())));
    }
  }

 private:
  static inline fs::path dir_;
  static inline bool generated_ = true;
  static inline nlohmann::json expected_;
};

TEST_F(TorchFileTest, ReadsEveryDtypeViewAndLayout) {
  // state_dict.pt as torch 1.13 writes it; the same records laid out as torch 2.x writes them (data
  // descriptors, ZIP64 end records, byteorder and .data/ records), with ZIP64 central-directory fields, and
  // with pickle protocol 4; a module's state_dict() with _metadata; a training checkpoint.
  for (const char* name :
       {"state_dict.pt", "torch2.pt", "zip64.pt", "protocol4.pt", "module.pt", "nested.pt"}) {
    SCOPED_TRACE(name);
    expect_matches(read_state_dict(file(name)), expected(name));
  }
}

TEST_F(TorchFileTest, ViewsShareTheirStorageAsInPyTorch) {
  std::map<std::string, torch::Tensor> tensors;
  for (auto& [name, t] : read_state_dict(file("state_dict.pt"))) tensors[name] = t;
  torch::Tensor a = tensors.at("shared_a"), b = tensors.at("shared_b");
  EXPECT_TRUE(a.is_alias_of(b));
  EXPECT_EQ(b.data_ptr<int64_t>() - a.data_ptr<int64_t>(), 4);  // storage offsets 2 and 6
  a.fill_(0);
  EXPECT_TRUE(torch::equal(b, torch::tensor({18, 21, 24, 27}, torch::kInt64).view({2, 2})));
  EXPECT_FALSE(tensors.at("f32").is_alias_of(a));
  EXPECT_EQ(tensors.at("transposed").strides().vec(), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(tensors.at("expanded").strides().vec(), (std::vector<int64_t>{0, 1}));
}

TEST_F(TorchFileTest, ReadsWhisperCheckpoint) {
  TorchFile whisper(file("whisper.pt"));
  const PickleValue* dims = whisper.root().find("dims");
  ASSERT_NE(dims, nullptr);
  for (const auto& [key, value] : expected("whisper_dims").items()) {
    ASSERT_NE(dims->find(key), nullptr) << key;
    EXPECT_EQ(*dims->find(key)->get<int64_t>(), value.get<int64_t>()) << key;
  }
  expect_matches(read_state_dict(file("whisper.pt")), expected("whisper.pt"));
}

TEST_F(TorchFileTest, DecodesEveryKindOfValue) {
  for (const char* name : {"containers.pt", "containers_p4.pt"}) {
    SCOPED_TRACE(name);
    TorchFile f(file(name));
    const PickleValue& v = f.root();
    ASSERT_EQ(v.get<PickleList>()->items.size(), 17u);
    EXPECT_EQ(*item(v, 2).get<int64_t>(), int64_t{1} << 40);
    EXPECT_EQ(*item(v, 3).get<int64_t>(), INT64_MIN);
    EXPECT_EQ(*item(v, 5).get<std::string>(), "h\xc3\xa9llo \xe2\x9c\x93");
    EXPECT_EQ(item(v, 6).get<PickleBytes>()->data, "\x00\xffraw"s);
    EXPECT_EQ(item(v, 7).get<PickleBytes>()->data, "");
    EXPECT_TRUE(item(v, 8).get<std::monostate>());
    const PickleValue& dict = item(v, 12);
    const auto& items = dict.get<PickleDict>()->items;
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(*items[1].first.get<int64_t>(), 3);
    EXPECT_EQ(*items[1].second.get<std::string>(), "int key");
    EXPECT_TRUE(torch::equal(f.tensor(*item(*dict.find("k"), 0).get<TensorRef>()), torch::ones({2})));
    // The same tensor twice in the pickle (memoized) reads the same both times.
    EXPECT_TRUE(
        torch::equal(f.tensor(*item(item(v, 11), 0).get<TensorRef>()), torch::tensor({1, 2}, torch::kInt64)));
    EXPECT_TRUE(torch::equal(f.tensor(*item(v, 16).get<TensorRef>()), torch::tensor({1, 2}, torch::kInt64)));
  }
}

TEST_F(TorchFileTest, RefusesHostileAndBrokenFiles) {
  const std::pair<const char*, const char*> cases[] = {
      {"os_system.pt", "refusing to load class os.system"},
      {"reduce_class.pt", "refusing to load class posix.system"},
      {"custom_class.pt", "refusing to load class __main__.Config"},
      {"whole_model.pt", "save model.state_dict() instead"},
      {"torchscript.pt", "TorchScript archive"},
      {"legacy.pt", "legacy format of torch < 1.6"},
      {"not_state_dict.pt", "the root is a dict of 2 items: a (int), b (list)"},
      {"truncated.pt", "no end-of-central-directory record"},
      {"garbage.pt", "no end-of-central-directory record"},
      {"short_storage.pt", "archive/data/0: 20 bytes, but the pickle declares 6 elements of Float"},
      {"missing_storage.pt", "storage record archive/data/1 is missing"},
      {"big_endian.pt", "byte order \"big\""},
      {"compressed.pt", "is compressed (method 8)"},
      {"bad_stride.pt", "stride [3, 1] and offset 0 reaches past the 4 elements of its storage"},
      {"bad_offset.pt", "offset 3 reaches past"},
      {"huge_view.pt", "reaches past"},
      {"overflow_view.pt", "more than 2^63 elements"},
      {"numel_mismatch.pt", "declares 8 elements"},
  };
  for (const auto& [name, expected] : cases) {
    const std::string error = error_of([&] { read_state_dict(file(name)); });
    EXPECT_NE(error.find(expected), std::string::npos) << name << ": " << error;
    EXPECT_NE(error.find(name), std::string::npos) << "the error names the file: " << error;
  }
  // The forged files' pickle is well formed: a view inside the storage reads.
  auto ok = read_state_dict(file("view_ok.pt"));
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_TRUE(torch::equal(ok[0].second, torch::tensor({2.0f, 3.0f, 4.0f})));
}

TEST_F(TorchFileTest, EveryTruncationIsAnError) {
  const fs::path cut = test::temp_dir("cut") / "cut.pt";
  fs::copy_file(file("state_dict.pt"), cut);
  for (auto n = fs::file_size(cut); n-- > 0;) {
    fs::resize_file(cut, n);
    EXPECT_THROW(read_state_dict(cut), Error) << "length " << n;
  }
}

TEST_F(TorchFileTest, CorruptBytesAreAnErrorOrHarmless) {
  // Flipping any byte must give an mmlearn::Error or a file that still loads (a flip in tensor data or in
  // padding changes nothing the reader checks); never a crash or another exception.
  const fs::path bad = test::temp_dir("flip") / "flip.pt";
  fs::copy_file(file("state_dict.pt"), bad);
  std::fstream io(bad, std::ios::in | std::ios::out | std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(io)), {});
  io.clear();  // reading to the end set eofbit
  int errors = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    io.seekp(i).put(static_cast<char>(bytes[i] ^ (i % 2 ? 0x01 : 0xff))).flush();
    try {
      read_state_dict(bad);
    } catch (const Error&) {
      ++errors;
    }
    io.seekp(i).put(bytes[i]).flush();
  }
  EXPECT_GT(errors, 500);
}
