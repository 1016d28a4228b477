// Parity with reference CLIP implementations: tests/fixtures/clip_reference.py writes tiny random-weight
// checkpoints in OpenAI's (safetensors, torch.save fp32 and fp16) and Hugging Face's layouts, with the
// tokens, pixels, embeddings and logits its PyTorch reference computes; mmlearn must reproduce them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "../test_util.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/models/clip_import.h"
#include "mmlearn/models/clip_pixels.h"

using namespace mmlearn;
namespace fs = std::filesystem;

namespace {

class ClipImport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (fs::exists(shared_vocab()))
      root_ = test::python_fixture("clip_reference.py", "--assets '" + test::clip_assets().string() + "'");
  }
  void SetUp() override {
    if (!fs::exists(shared_vocab())) GTEST_SKIP() << "CLIP vocabulary not found in " << test::clip_assets();
    ASSERT_FALSE(root_.empty()) << "tests/fixtures/clip_reference.py failed: it needs /usr/bin/python3 with "
                                   "torch, numpy and PIL (Debian: python3-torch python3-numpy python3-pil)";
  }
  static fs::path config(const std::string& name) { return root_ / name; }
  static fs::path shared_vocab() {
    return test::shared_dir() / "assets" / "clip" / "bpe_simple_vocab_16e6.txt.gz";
  }

  // Tokens, pixels, embeddings and logits of `clip` against the reference's outputs named by `suffix`
  // (openai, openai_fp16 or hf); `family` picks the reference pixels (openai or hf).
  static void expect_parity(const fs::path& dir, ClipBundle& clip, const std::string& suffix,
                            const std::string& family) {
    const TensorMap expected = load_safetensors(dir / "expected.safetensors");
    nlohmann::json meta = nlohmann::json::parse(std::ifstream(dir / "expected.json"));
    std::vector<std::string> texts = meta["texts"].get<std::vector<std::string>>();
    const auto ids = tokenize_batch(clip.tokenizer, texts, clip.model->config.text.context_length);
    const auto& ref_ids = expected.at("input_ids");
    for (int64_t i = 0; i < ids.size(0); ++i)
      EXPECT_TRUE(torch::equal(ids[i], ref_ids[i])) << "text " << i << ": \"" << texts[size_t(i)] << "\"\n"
                                                    << ids[i] << "\nreference:\n"
                                                    << ref_ids[i];

    std::vector<torch::Tensor> pixels;
    for (const auto& image : meta["images"])
      pixels.push_back(load_clip_pixels(clip.model->config, dir / image["file"].get<std::string>()));
    const auto x = torch::stack(pixels);
    const auto& ref_x = expected.at("pixel_values_" + family);
    ASSERT_EQ(x.sizes(), ref_x.sizes());
    // One 8-bit level, in normalized units: 1 / 255 / std.
    const double level = 1.0 / 255 / 0.26130258;
    EXPECT_LE((x - ref_x).abs().max().item<double>(), level + 1e-6) << family << " pixels";

    const auto image_embeds = embed_pixels(clip.model, ref_x), text_embeds = embed_texts(clip.model, ref_ids);
    const auto image_cos = (image_embeds * expected.at("image_embeds_" + suffix)).sum(1);
    const auto text_cos = (text_embeds * expected.at("text_embeds_" + suffix)).sum(1);
    EXPECT_GE(image_cos.min().item<double>(), 0.99999) << suffix << " image embeddings";
    EXPECT_GE(text_cos.min().item<double>(), 0.99999) << suffix << " text embeddings";
    const auto logits = clip.model->logit_scale.exp() * torch::matmul(image_embeds, text_embeds.t());
    EXPECT_LE((logits - expected.at("logits_per_image_" + suffix)).abs().max().item<double>(), 2e-3)
        << suffix << " logits";
    // And end to end from our own pixels.
    const auto ours = embed_pixels(clip.model, x);
    EXPECT_GE((ours * expected.at("image_embeds_" + suffix)).sum(1).min().item<double>(), 0.9999) << suffix;
  }

  static inline fs::path root_;
};

const char* kConfigs[] = {"quickgelu_i32_p8", "gelu_i48_p16"};

}  // namespace

TEST_F(ClipImport, OpenAIStateDictAsSafetensorsWithOpenAIsVocabulary) {
  for (const char* name : kConfigs) {
    SCOPED_TRACE(name);
    ClipBundle clip =
        open_clip(config(name) / "openai.safetensors",
                  {.tokenizer = shared_vocab(),
                   .activation = std::string(name).starts_with("gelu") ? std::optional(Activation::gelu)
                                                                       : std::nullopt});
    EXPECT_EQ(clip.model->config.image_preprocess, "openai");
    expect_parity(config(name), clip, "openai", "openai");
  }
}

TEST_F(ClipImport, OpenAIStateDictAsTorchSaveInFp32AndFp16) {
  for (const char* name : kConfigs) {
    SCOPED_TRACE(name);
    const std::optional<Activation> act =
        std::string(name).starts_with("gelu") ? std::optional(Activation::gelu) : std::nullopt;
    ClipBundle fp32 =
        open_clip(config(name) / "openai.pt", {.tokenizer = config(name) / "hf", .activation = act});
    expect_parity(config(name), fp32, "openai", "openai");
    // OpenCLIP and HF name the same torch.save format .bin.
    const fs::path bin = test::temp_dir(name) / "open_clip_pytorch_model.bin";
    fs::copy_file(config(name) / "openai_fp16.pt", bin);
    ClipBundle fp16 = open_clip(bin, {.tokenizer = config(name) / "hf", .activation = act});
    expect_parity(config(name), fp16, "openai_fp16", "openai");
  }
}

TEST_F(ClipImport, InfersTheArchitectureFromTensorShapes) {
  const ClipConfig c =
      open_clip(config("gelu_i48_p16") / "openai.safetensors", {.tokenizer = shared_vocab()}).model->config;
  EXPECT_EQ(c.vision.image_size, 48);
  EXPECT_EQ(c.vision.patch_size, 16);
  EXPECT_EQ(c.vision.width, 192);
  EXPECT_EQ(c.vision.heads, 3);
  EXPECT_EQ(c.vision.layers, 2);
  EXPECT_EQ(c.text.heads, 2);
  EXPECT_EQ(c.text.context_length, 77);
  EXPECT_EQ(c.text.eot_token_id, 49407);
  EXPECT_EQ(c.embed_dim, 32);
  EXPECT_EQ(c.activation, Activation::quick_gelu);  // OpenAI's, unless told otherwise
}

TEST_F(ClipImport, HuggingFaceDirectoriesSingleAndSharded) {
  for (const char* name : kConfigs) {
    SCOPED_TRACE(name);
    ClipBundle clip = open_clip(config(name) / "hf");
    EXPECT_EQ(clip.model->config.image_preprocess, "hf");
    expect_parity(config(name), clip, "hf", "hf");
  }
  ClipBundle sharded = open_clip(config("quickgelu_i32_p8") / "hf_sharded");
  expect_parity(config("quickgelu_i32_p8"), sharded, "hf", "hf");
}

TEST_F(ClipImport, ConvertedModelDirectoriesKeepTheNumbersAndThePreprocessing) {
  const fs::path out = test::temp_dir("converted");
  ClipBundle hf = open_clip(config("gelu_i48_p16") / "hf");
  save_clip(out, hf.model, hf.tokenizer);
  ClipBundle back = open_clip(out);
  EXPECT_EQ(back.model->config.image_preprocess, "hf");
  expect_parity(config("gelu_i48_p16"), back, "hf", "hf");
}

TEST_F(ClipImport, BadCheckpointsGetClearErrors) {
  const fs::path dir = test::temp_dir("bad");
  using test::error_of;
  TensorMap state = load_safetensors(config("quickgelu_i32_p8") / "openai.safetensors");
  state.erase("ln_final.weight");
  save_safetensors(dir / "partial.safetensors", state);
  EXPECT_NE(error_of([&] {
              open_clip(dir / "partial.safetensors", {.tokenizer = shared_vocab()});
            }).find("no tensor \"ln_final.weight\""),
            std::string::npos);
  std::ofstream(dir / "weights.onnx") << "x";
  EXPECT_NE(error_of([&] { open_clip(dir / "weights.onnx"); }).find("unknown checkpoint type"),
            std::string::npos);
  fs::create_directories(dir / "empty");
  EXPECT_NE(error_of([&] { open_clip(dir / "empty"); }).find("not a model directory"), std::string::npos);
  fs::copy_file(config("quickgelu_i32_p8") / "openai.safetensors", dir / "alone.safetensors");
  EXPECT_NE(error_of([&] { open_clip(dir / "alone.safetensors"); }).find("--tokenizer"), std::string::npos);
  EXPECT_NE(error_of([&] { open_clip(dir / "missing.pt"); }).find("does not exist"), std::string::npos);
}

TEST_F(ClipImport, OpenAIResNetStateDicts) {
  for (const char* file : {"openai.safetensors", "openai.pt"}) {
    SCOPED_TRACE(file);
    ClipBundle clip = open_clip(config("rn_i64") / file, {.tokenizer = shared_vocab()});
    const VisionConfig& v = clip.model->config.vision;
    EXPECT_EQ(v.resnet_layers, (std::vector<int64_t>{1, 2, 1, 1}));
    EXPECT_EQ(v.width, 16);
    EXPECT_EQ(v.heads, 8);
    EXPECT_EQ(v.image_size, 64);
    expect_parity(config("rn_i64"), clip, "openai", "openai");
  }
}

TEST_F(ClipImport, HuggingFaceExportOpensWithTheSameNumbers) {
  const fs::path out = test::temp_dir("hf_export");
  for (const char* name : kConfigs) {
    SCOPED_TRACE(name);
    ClipBundle hf = open_clip(config(name) / "hf");
    save_clip_hf(out / name, hf.model, hf.tokenizer);
    ClipBundle back = open_clip(out / name);
    EXPECT_EQ(back.model->config.image_preprocess, "hf");
    expect_parity(config(name), back, "hf", "hf");
    // The same tensor names as the reference's own HF directory.
    const TensorMap ours = load_safetensors(out / name / "model.safetensors");
    const TensorMap reference = load_safetensors(config(name) / "hf" / "model.safetensors");
    for (const auto& [key, t] : reference)
      if (!key.ends_with("position_ids")) EXPECT_TRUE(ours.count(key)) << key;
    EXPECT_EQ(ours.size() + 2, reference.size());  // the reference also holds two position_ids buffers
  }
  ClipBundle resnet = open_clip(config("rn_i64") / "openai.safetensors", {.tokenizer = shared_vocab()});
  EXPECT_THROW(save_clip_hf(out / "rn", resnet.model, resnet.tokenizer), Error);
}
