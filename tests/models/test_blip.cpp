// Parity with Hugging Face BLIP: tests/fixtures/blip_reference.py writes tiny random-weight
// BlipForConditionalGeneration and BlipForQuestionAnswering directories (model.safetensors as save_pretrained
// writes it, and pytorch_model.bin), images, and what its PyTorch reference of the published structure
// computes: pixels, image tokens, encoded questions, teacher-forced logits, greedy and beam-3 texts. mmlearn
// must reproduce them, and open the directories through the captioner's rows of the registry.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/models/blip.h"
#include "mmlearn/models/registry.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const fs::path& fixture() {
  static const fs::path dir = test::python_fixture("blip_reference.py");
  return dir;
}

// Largest absolute difference relative to the reference's largest magnitude.
double relative_to_reference(const torch::Tensor& ours, const torch::Tensor& reference) {
  EXPECT_EQ(ours.sizes(), reference.sizes());
  if (ours.sizes() != reference.sizes()) return 1e9;
  return (ours - reference).abs().max().item<double>() / reference.abs().max().item<double>();
}

std::vector<int64_t> ids(const json& j) { return j.get<std::vector<int64_t>>(); }

class BlipParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(fixture().empty())
        << "tests/fixtures/blip_reference.py failed: it needs /usr/bin/python3 with "
           "torch, numpy and PIL";
    name_ = GetParam();
    task_ = name_.starts_with("vqa") ? "vqa" : "caption";
    const std::string base = task_;
    expected_ = load_safetensors(fixture() / base / "expected.safetensors");
    reference_ = read_json_file(fixture() / "expected.json");
    for (const auto& image : reference_["images"])
      images_.push_back(fixture() / "images" / image.get<std::string>());
  }
  std::string name_, task_;
  TensorMap expected_;
  json reference_;
  std::vector<fs::path> images_;
};

TEST_P(BlipParity, PixelsImageTokensAndLogits) {
  auto model = open_model(fixture() / name_);
  EXPECT_EQ(model->writes(), task_);
  EXPECT_EQ(model->family().task, task_);
  ASSERT_NE(model->bundle<BlipBundle>(), nullptr);
  BlipBundle& blip = *model->bundle<BlipBundle>();

  std::vector<torch::Tensor> pixels;
  for (const auto& image : images_) pixels.push_back(load_blip_pixels(blip, image));
  const auto x = torch::stack(pixels);
  EXPECT_LE((x - expected_["pixels"]).abs().max().item<double>(), 1e-6);

  torch::NoGradGuard no_grad;
  const auto image_tokens = blip.model->vision->forward(expected_["pixels"]);
  EXPECT_LE(relative_to_reference(image_tokens, expected_["image_embeds"]), 1e-4);

  const auto forced = expected_["forced_tokens"].unsqueeze(0);
  auto& decoder = blip.model->text_decoder;
  if (task_ == "caption") {
    const auto tokens = forced.expand({image_tokens.size(0), -1});
    const auto logits = decoder->logits(decoder->forward(tokens, /*causal=*/true, image_tokens));
    EXPECT_LE(relative_to_reference(logits, expected_["forced_logits"]), 1e-4);
  } else {
    const auto& results = reference_["vqa"]["results"];
    for (int q = 0; q < 2; ++q)
      for (int i = 0; i < 2; ++i) {
        const json& r = results[str_cat("q", q, "_image", i)];
        const auto question = blip.tokenizer.encode_with_specials(r["question"].get<std::string>());
        EXPECT_EQ(question, ids(r["question_ids"]));
        const auto encoded = blip.model->text_encoder->forward(
            torch::tensor(question).unsqueeze(0), /*causal=*/false, image_tokens.narrow(0, i, 1));
        EXPECT_LE(relative_to_reference(encoded[0], expected_[str_cat("question_embeds_q", q, "_image", i)]),
                  1e-4)
            << "question " << q << ", image " << i;
      }
    const auto memory = expected_["question_embeds_q0_image0"].unsqueeze(0);
    const auto logits = decoder->logits(decoder->forward(forced, /*causal=*/true, memory));
    EXPECT_LE(relative_to_reference(logits, expected_["forced_logits"]), 1e-4);
  }
}

// Greedy and beam-3 texts, both images in one batch (the reference writes one at a time).
TEST_P(BlipParity, GreedyAndBeamSearchWriteTheReferenceTokens) {
  auto model = open_model(fixture() / name_);
  BlipBundle& blip = *model->bundle<BlipBundle>();
  const auto pixels = expected_["pixels"];
  const int64_t max_new = reference_["max_new_tokens"].get<int64_t>();
  const auto& results = reference_[task_]["results"];
  const std::vector<std::string> prompts =
      task_ == "caption" ? std::vector<std::string>{"", "a picture of"}
                         : std::vector<std::string>{"what color is the star?", "how many circles are there?"};
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (int64_t beam : {1, 3}) {
      const GenerationOptions o{.max_new_tokens = max_new, .beam = beam};
      const std::vector<std::string> batch(2, prompts[p]);
      const auto written = blip_generate(blip, pixels, batch, o);
      const auto texts = blip_describe(blip, pixels, batch, o);
      for (int i = 0; i < 2; ++i) {
        const json& r =
            results[task_ == "caption" ? str_cat("prompt", p, "_image", i) : str_cat("q", p, "_image", i)];
        const std::string run = beam == 1 ? "greedy" : "beam3";
        EXPECT_EQ(written[static_cast<size_t>(i)].tokens, ids(r[run]))
            << prompts[p] << ", image " << i << ", " << run;
        EXPECT_NEAR(written[static_cast<size_t>(i)].logprob, r[run + "_logprob"].get<double>(), 1e-3);
        EXPECT_EQ(texts[static_cast<size_t>(i)], r[beam == 1 ? "text" : "beam3_text"].get<std::string>());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, BlipParity, ::testing::Values("caption", "caption_bin", "vqa", "vqa_bin"));

// A directory copied from the fixture's, with `edit` applied to its config.json.
fs::path edited_copy(const std::string& name, const std::string& source,
                     const std::function<void(json&)>& edit) {
  const fs::path dir = test::temp_dir(name);
  fs::copy(fixture() / source, dir);
  json config = read_json_file(dir / "config.json");
  edit(config);
  std::ofstream(dir / "config.json") << config.dump();
  return dir;
}

TEST(Blip, BadDirectoriesAreRefusedByName) {
  ASSERT_FALSE(fixture().empty());
  auto error_opening = [](const fs::path& dir) { return test::error_of([&] { open_model(dir); }); };
  // An architecture mmlearn does not run.
  auto dir = edited_copy("retrieval", "caption",
                         [](json& c) { c["architectures"] = {"BlipForImageTextRetrieval"}; });
  EXPECT_NE(error_opening(dir).find("BlipForImageTextRetrieval"), std::string::npos) << error_opening(dir);
  // A config asking for far more than the weights hold fails before allocating it.
  dir = edited_copy("huge", "caption", [](json& c) { c["text_config"]["num_hidden_layers"] = 200; });
  EXPECT_NE(error_opening(dir).find("config.json"), std::string::npos) << error_opening(dir);
  dir = edited_copy("heads", "vqa", [](json& c) { c["vision_config"]["num_attention_heads"] = 5; });
  EXPECT_NE(error_opening(dir).find("num_attention_heads"), std::string::npos) << error_opening(dir);
  dir = edited_copy("bos", "caption", [](json& c) { c["text_config"]["bos_token_id"] = 1 << 20; });
  EXPECT_NE(error_opening(dir).find("bos_token_id"), std::string::npos) << error_opening(dir);
  dir = edited_copy("act", "caption", [](json& c) { c["vision_config"]["hidden_act"] = "relu"; });
  EXPECT_NE(error_opening(dir).find("hidden_act"), std::string::npos) << error_opening(dir);
  // Weights of another shape, a tensor missing, a processor of another size.
  dir = edited_copy("width", "caption", [](json& c) { c["text_config"]["intermediate_size"] = 60; });
  EXPECT_NE(error_opening(dir).find("shape"), std::string::npos) << error_opening(dir);
  dir = edited_copy("size", "caption", [](json&) {});
  std::ofstream(dir / "preprocessor_config.json")
      << R"({"image_processor_type": "BlipImageProcessor", "size": {"height": 64, "width": 64}})";
  EXPECT_NE(error_opening(dir).find("image_size 32"), std::string::npos) << error_opening(dir);
  dir = edited_copy("missing", "caption_bin", [](json&) {});
  TensorMap weights = load_safetensors(fixture() / "caption" / "model.safetensors");
  weights.erase("text_decoder.bert.encoder.layer.1.crossattention.self.key.weight");
  fs::remove(dir / "pytorch_model.bin");
  save_safetensors(dir / "model.safetensors", weights);
  EXPECT_NE(error_opening(dir).find("missing tensors: text_decoder.layers.1.cross_attn.key.weight"),
            std::string::npos)
      << error_opening(dir);
}

TEST(Blip, OverlongPromptsAndEmptyQuestionsAreUsageErrors) {
  ASSERT_FALSE(fixture().empty());
  auto caption = open_model(fixture() / "caption");
  auto vqa = open_model(fixture() / "vqa");
  const fs::path image = fixture() / "images" / "wide.png";
  std::string long_text;
  for (int i = 0; i < 30; ++i) long_text += "star ";
  EXPECT_THROW(caption->describe({image}, {long_text}, {}), UsageError);
  EXPECT_THROW(vqa->describe({image}, {long_text + "?"}, {}), UsageError);
  EXPECT_THROW(vqa->describe({image}, {"  "}, {}), UsageError);
}

// The verbs open BLIP directories as they open captioners trained here.
TEST(BlipCli, CaptionAskAndDumpOpenHuggingFaceDirectories) {
  ASSERT_FALSE(fixture().empty());
  const json reference = read_json_file(fixture() / "expected.json");
  const std::string wide = (fixture() / "images" / "wide.png").string(),
                    tall = (fixture() / "images" / "tall.png").string();
  const std::string caption = (fixture() / "caption").string(), vqa = (fixture() / "vqa").string();
  auto r = test::run_cli("caption --model " + caption + " --image " + wide + " --image " + tall +
                         " --max-tokens 10 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  json out = json::parse(r.output);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1]["caption"], reference["caption"]["results"]["prompt0_image1"]["text"]);
  r = test::run_cli("caption --model " + caption + " --image " + tall +
                    " --prompt 'a picture of' --beam 3 --max-tokens 10 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)[0]["caption"],
            reference["caption"]["results"]["prompt1_image1"]["beam3_text"]);
  r = test::run_cli("ask --model " + vqa + " --image " + wide +
                    " --question 'how many circles are there?' --max-tokens 10 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)[0]["answer"], reference["vqa"]["results"]["q1_image0"]["text"]);

  const fs::path dumped = test::temp_dir("dump") / "caption.safetensors";
  r = test::run_cli("dump --model " + caption + " --image " + wide + " --image " + tall +
                    " --text 'a picture of' --out " + dumped.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const TensorMap d = load_safetensors(dumped);
  const TensorMap expected = load_safetensors(fixture() / "caption" / "expected.safetensors");
  EXPECT_LE((d.at("pixel_values") - expected.at("pixels")).abs().max().item<double>(), 1e-6);
  EXPECT_LE(relative_to_reference(d.at("image_embeds"), expected.at("image_embeds")), 1e-4);
  EXPECT_EQ(
      std::vector<int64_t>(d.at("input_ids").data_ptr<int64_t>(), d.at("input_ids").data_ptr<int64_t>() + 4),
      ids(reference["caption"]["results"]["prompt1_image0"]["start"]));
  EXPECT_EQ(d.at("logits").size(1), 4);

  // A captioner asked questions, an answerer asked for captions, an empty question: usage errors.
  r = test::run_cli("ask --model " + caption + " --image " + wide + " --question 'what?'");
  EXPECT_EQ(r.status, 2) << r.output;
  r = test::run_cli("caption --model " + vqa + " --image " + wide);
  EXPECT_EQ(r.status, 2) << r.output;
  r = test::run_cli("dump --model " + vqa + " --image " + wide + " --out " + dumped.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("question"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mmlearn
