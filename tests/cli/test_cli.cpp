// The command line as users meet it: exit codes, and errors that name the file, line and field.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/safetensors.h"

namespace fs = std::filesystem;
using mmlearn::test::CliRun;
using mmlearn::test::run_cli;
using nlohmann::json;

namespace {

// A tiny trained model shared by the tests here.
const fs::path& model_dir() {
  static const fs::path dir = [] {
    const fs::path d = mmlearn::test::shared_fixture("cli-model", [](const fs::path& d) {
      CliRun data =
          run_cli("data shapes --out " + (d / "shapes").string() + " --train 256 --test 64 --seed 1");
      EXPECT_EQ(data.status, 0) << data.output;
      CliRun train = run_cli("train --data " + (d / "shapes").string() + " --out " + (d / "run").string() +
                             " --steps 3 --batch-size 32");
      EXPECT_EQ(train.status, 0) << train.output;
      return data.status == 0 && train.status == 0;
    });
    if (d.empty()) ADD_FAILURE() << "the model the tests share could not be made";
    return d;
  }();
  return dir;
}

}  // namespace

TEST(Cli, UsageErrorsExitWithTwo) {
  EXPECT_EQ(run_cli("").status, 2);
  EXPECT_EQ(run_cli("no-such-verb").status, 2);
  EXPECT_EQ(run_cli("train --data x").status, 2);  // --out missing
  EXPECT_EQ(run_cli("embed --model x").status, 2);
  CliRun help = run_cli("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("quickstart"), std::string::npos);
}

TEST(Cli, DataShapesIsDeterministic) {
  auto dir = mmlearn::test::temp_dir("shapes");
  for (const char* name : {"a", "b"}) {
    CliRun r =
        run_cli("data shapes --out " + (dir / name).string() + " --train 40 --test 10 --seed 5 --json");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(json::parse(r.output)["records"].get<int64_t>(), 50);
  }
  auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  for (const char* f : {"train.jsonl", "test.jsonl", "classes.json", "images/train/000017.png"})
    EXPECT_EQ(bytes(dir / "a" / f), bytes(dir / "b" / f)) << f;
}

TEST(Cli, EvalAndEmbedPrintJson) {
  const fs::path d = model_dir();
  CliRun eval = run_cli("eval --model " + (d / "run").string() + " --data " +
                        (d / "shapes/test.jsonl").string() + " --json");
  ASSERT_EQ(eval.status, 0) << eval.output;
  json m = json::parse(eval.output);
  for (const char* dir : {"image_to_text", "text_to_image"})
    for (const char* k : {"R@1", "R@5", "R@10"}) {
      double v = m["retrieval"][dir][k].get<double>();
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
    }
  for (const char* a : {"color", "shape", "size"}) EXPECT_TRUE(m["zero_shot"].contains(a)) << a;

  CliRun embed = run_cli("embed --model " + (d / "run").string() + " --image " +
                         (d / "shapes/images/test/000000.png").string() + " --text 'a red circle' --json");
  ASSERT_EQ(embed.status, 0) << embed.output;
  json e = json::parse(embed.output);
  ASSERT_EQ(e.size(), 2u);
  for (const auto& row : e) {
    double norm = 0;
    for (double v : row["embedding"]) norm += v * v;
    EXPECT_NEAR(norm, 1.0, 1e-4);
  }
}

TEST(Cli, BadInputNamesFileLineAndField) {
  const fs::path d = model_dir();
  auto dir = mmlearn::test::temp_dir("bad");
  const std::string run = (d / "run").string();

  std::ofstream(dir / "broken.jsonl") << "{\"image\": \"a.png\", \"text\": \"x\"}\n{\"image\": oops}\n";
  CliRun r = run_cli("eval --model " + run + " --data " + (dir / "broken.jsonl").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("broken.jsonl:2"), std::string::npos) << r.output;

  std::ofstream(dir / "fields.jsonl") << "{\"image\": 3, \"text\": \"x\"}\n";
  r = run_cli("eval --strict --model " + run + " --data " + (dir / "fields.jsonl").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("fields.jsonl:1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"image\""), std::string::npos) << r.output;

  std::ofstream(dir / "corrupt.png") << "\x89PNG\r\n\x1a\n garbage";
  std::ofstream(dir / "images.jsonl") << "{\"image\": \"corrupt.png\", \"text\": \"x\"}\n"
                                      << "{\"image\": \"missing.png\", \"text\": \"y\"}\n";
  r = run_cli("eval --strict --model " + run + " --data " + (dir / "images.jsonl").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("corrupt.png"), std::string::npos) << r.output;
  r = run_cli("eval --model " + run + " --data " + (dir / "images.jsonl").string());
  EXPECT_EQ(r.status, 1);  // every record bad: nothing to evaluate
  EXPECT_NE(r.output.find("no usable image + text records"), std::string::npos) << r.output;

  r = run_cli("train --preset clip-huge --data " + (d / "shapes").string() + " --out " +
              (dir / "x").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("unknown preset \"clip-huge\""), std::string::npos) << r.output;

  fs::copy(d / "run", dir / "partial", fs::copy_options::recursive);
  fs::remove(dir / "partial" / "merges.txt");
  r = run_cli("embed --model " + (dir / "partial").string() + " --text hi");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("merges.txt"), std::string::npos) << r.output;

  fs::copy(d / "run", dir / "hostile", fs::copy_options::recursive);
  std::ofstream(dir / "hostile" / "model.safetensors", std::ios::binary | std::ios::trunc)
      << std::string("\xff\xff\xff\xff\xff\xff\x00\x00", 8) << "{}";
  r = run_cli("embed --model " + (dir / "hostile").string() + " --text hi");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("model.safetensors"), std::string::npos) << r.output;
}

TEST(Cli, HugeImagesAreRefusedOrDecodedSmall) {
  const fs::path d = model_dir();
  auto dir = mmlearn::test::temp_dir("huge");
  // A PNG header claiming 50,000 x 50,000 pixels (valid signature and IHDR CRC, no image data).
  const unsigned char png[] = {0x89, 'P', 'N', 'G',  0x0d, 0x0a, 0x1a, 0x0a, 0,    0, 0, 13, 'I', 'H', 'D',
                               'R',  0,   0,   0xc3, 0x50, 0,    0,    0xc3, 0x50, 8, 2, 0,  0,   0};
  std::ofstream f(dir / "huge.png", std::ios::binary);
  f.write(reinterpret_cast<const char*>(png), sizeof png);
  // CRC-32 over "IHDR" + data.
  uint32_t crc = 0xffffffff;
  for (size_t i = 12; i < sizeof png; ++i) {
    crc ^= png[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320 & (0 - (crc & 1)));
  }
  crc ^= 0xffffffff;
  for (int s = 24; s >= 0; s -= 8) f.put(static_cast<char>((crc >> s) & 0xff));
  f.close();
  CliRun r = run_cli("embed --model " + (d / "run").string() + " --image " + (dir / "huge.png").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("50000"), std::string::npos) << r.output;
}

TEST(Cli, TokenizerTrainsFromAManifestAndTokenizes) {
  auto dir = mmlearn::test::temp_dir("tok");
  std::ofstream m(dir / "train.jsonl");
  for (int i = 0; i < 50; ++i)
    m << json{{"text", "a small red circle and a large blue square"}}.dump() << "\n";
  m.close();
  CliRun r = run_cli("tokenizer train --data " + (dir / "train.jsonl").string() + " --out " +
                     (dir / "tok").string() + " --vocab-size 600");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_cli("tokenize --model " + (dir / "tok").string() + " --text 'a small red circle' --json");
  ASSERT_EQ(r.status, 0) << r.output;
  json t = json::parse(r.output);
  // Frequent words became single tokens: one id per word.
  EXPECT_EQ(t[0]["ids"].size(), 4u) << r.output;
  EXPECT_EQ(t[0]["tokens"][3], "circle</w>");
  std::ofstream(dir / "bad.jsonl") << "{\"text\": 5}\n";
  r = run_cli("tokenizer train --data " + (dir / "bad.jsonl").string() + " --out " + (dir / "tok2").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("bad.jsonl:1"), std::string::npos) << r.output;
}

// dump, zero-shot and convert on a Hugging Face directory written by tests/fixtures/clip_reference.py.
TEST(Cli, DumpZeroShotAndConvertOnAPretrainedModel) {
  const fs::path assets = mmlearn::test::clip_assets();
  if (!fs::exists(assets / "vocab.json")) GTEST_SKIP() << "CLIP vocabulary not found in " << assets;
  const fs::path fixtures =
      mmlearn::test::python_fixture("clip_reference.py", "--assets '" + assets.string() + "'");
  ASSERT_FALSE(fixtures.empty())
      << "tests/fixtures/clip_reference.py failed (needs python3-torch, -numpy, -pil)";
  const fs::path cfg = fixtures / "quickgelu_i32_p8", hf = cfg / "hf";
  const json meta = json::parse(std::ifstream(cfg / "expected.json"));
  const auto expected = mmlearn::load_safetensors(cfg / "expected.safetensors");
  const fs::path dir = mmlearn::test::temp_dir("pretrained");
  std::string images;
  for (const auto& image : meta["images"])
    images += " --image " + (cfg / image["file"].get<std::string>()).string();
  ASSERT_EQ(meta["texts"][0], "a photo of a cat");

  CliRun dump = run_cli("dump --model " + hf.string() + images + " --text 'a photo of a cat' --out " +
                        (dir / "dump.safetensors").string());
  ASSERT_EQ(dump.status, 0) << dump.output;
  const auto got = mmlearn::load_safetensors(dir / "dump.safetensors");
  EXPECT_TRUE(torch::equal(got.at("input_ids")[0], expected.at("input_ids")[0]));
  EXPECT_LE((got.at("pixel_values") - expected.at("pixel_values_hf")).abs().max().item<double>(), 0.015);
  EXPECT_GE((got.at("image_embeds") * expected.at("image_embeds_hf")).sum(1).min().item<double>(), 0.9999);
  EXPECT_LE((got.at("logits_per_image").select(1, 0) - expected.at("logits_per_image_hf").select(1, 0))
                .abs()
                .max()
                .item<double>(),
            2e-3);

  CliRun zero_shot = run_cli("zero-shot --model " + hf.string() + images + " --labels 'cat, dog,car' --json");
  ASSERT_EQ(zero_shot.status, 0) << zero_shot.output;
  const json answers = json::parse(zero_shot.output);
  ASSERT_EQ(answers.size(), meta["images"].size());
  for (const auto& a : answers) {
    double sum = 0, best = -1;
    std::string best_label;
    for (const auto& [label, p] : a["probabilities"].items()) {
      sum += p.get<double>();
      if (p.get<double>() > best) best = p.get<double>(), best_label = label;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_EQ(a["label"], best_label);
    EXPECT_EQ(a["probabilities"].size(), 3u);  // "cat", "dog", "car": spaces trimmed
  }
  EXPECT_EQ(run_cli("zero-shot --model " + hf.string() + images + " --labels cat").status, 2);
  EXPECT_EQ(
      run_cli("zero-shot --model " + hf.string() + images + " --labels cat,dog --template 'a photo'").status,
      2);

  CliRun convert = run_cli("convert --model " + hf.string() + " --out " + (dir / "converted").string());
  ASSERT_EQ(convert.status, 0) << convert.output;
  CliRun again = run_cli("dump --model " + (dir / "converted").string() + images +
                         " --text 'a photo of a cat' --out " + (dir / "again.safetensors").string());
  ASSERT_EQ(again.status, 0) << again.output;
  const auto converted = mmlearn::load_safetensors(dir / "again.safetensors");
  for (const char* name : {"input_ids", "pixel_values", "image_embeds", "text_embeds", "logits_per_image"})
    EXPECT_TRUE(torch::equal(converted.at(name), got.at(name))) << name;
}

// On a fine-tuned model, the zero-shot command given the shapes world's classes answers as `eval` scores:
// the same accuracy.
TEST(Cli, ZeroShotCommandAgreesWithEvalOnAFineTunedModel) {
  const fs::path d = model_dir(), shapes = d / "shapes", model = mmlearn::test::temp_dir("tuned") / "run";
  CliRun tune = run_cli("train --init-from " + (d / "run").string() + " --data " + shapes.string() +
                        " --out " + model.string() + " --steps 2 --batch-size 16");
  ASSERT_EQ(tune.status, 0) << tune.output;
  CliRun eval =
      run_cli("eval --model " + model.string() + " --data " + (shapes / "test.jsonl").string() + " --json");
  ASSERT_EQ(eval.status, 0) << eval.output;
  const json scores = json::parse(eval.output)["zero_shot"];

  std::vector<json> records;
  std::string images;
  std::ifstream in(shapes / "test.jsonl");
  for (std::string line; std::getline(in, line);) {
    json r = json::parse(line);
    if (!r.contains("labels")) continue;  // only single-object scenes carry labels
    images += " --image " + (shapes / r["image"].get<std::string>()).string();
    records.push_back(r);
  }
  ASSERT_GT(records.size(), 5u);
  CliRun zero_shot = run_cli("zero-shot --model " + model.string() + " --classes " +
                             (shapes / "classes.json").string() + images + " --json");
  ASSERT_EQ(zero_shot.status, 0) << zero_shot.output;
  const json answers = json::parse(zero_shot.output);
  ASSERT_EQ(answers.size(), records.size());
  for (const char* attribute : {"color", "shape", "size"}) {
    int correct = 0;
    for (size_t i = 0; i < records.size(); ++i)
      correct += answers[i]["labels"][attribute] == records[i]["labels"][attribute];
    EXPECT_DOUBLE_EQ(double(correct) / double(records.size()), scores[attribute].get<double>()) << attribute;
  }
  // The same classes spelled on the command line.
  CliRun spelled =
      run_cli("zero-shot --model " + model.string() + images.substr(0, images.find(" --image", 1)) +
              " --template 'a {size} {color} {shape}' --labels color=red,green,blue,yellow,purple,orange"
              " --labels shape=circle,square,triangle,diamond,star --labels size=small,large --json");
  ASSERT_EQ(spelled.status, 0) << spelled.output;
  EXPECT_EQ(json::parse(spelled.output)[0]["labels"], answers[0]["labels"]);
  EXPECT_EQ(run_cli("zero-shot --model " + model.string() + images + " --labels color=red,green").status, 2);
}

// Fine-tuning from a model directory with the towers frozen changes only the projections and the temperature.
TEST(Cli, InitFromFineTunesAndFreezesTheTowers) {
  const fs::path d = model_dir(), tuned = mmlearn::test::temp_dir("tuned") / "run";
  CliRun train = run_cli("train --init-from " + (d / "run").string() + " --data " + (d / "shapes").string() +
                         " --out " + tuned.string() + " --steps 2 --batch-size 16 --freeze-towers --lr 1e-2");
  ASSERT_EQ(train.status, 0) << train.output;
  const auto before = mmlearn::load_safetensors(d / "run" / "model.safetensors");
  const auto after = mmlearn::load_safetensors(tuned / "model.safetensors");
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [name, t] : before) {
    const bool head = name == "visual.attnpool.c_proj.weight" || name == "visual.attnpool.c_proj.bias" ||
                      name == "text.text_projection" || name == "logit_scale";
    EXPECT_EQ(torch::equal(t, after.at(name)), !head) << name;
  }
  EXPECT_EQ(run_cli("train --init-from " + (d / "run").string() + " --tokenizer " + (d / "run").string() +
                    " --data " + (d / "shapes").string() + " --out " + (tuned.parent_path() / "x").string())
                .status,
            2);
}

// Whisper from the command line, on the tiny random-weight models of tests/fixtures/whisper_reference.py.
class CliWhisper : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = mmlearn::test::whisper_fixture();
    if (root_.empty()) GTEST_SKIP() << "no Whisper assets or fixture";
    model_ = "--model '" + (root_ / "tiny_80" / "openai.pt").string() + "' --tokenizer '" +
             (mmlearn::test::whisper_assets() / "multilingual.tiktoken").string() + "'";
    clip_ = "'" + (mmlearn::test::whisper_assets() / "jfk.flac").string() + "'";
  }
  fs::path root_;
  std::string model_, clip_;
};

TEST_F(CliWhisper, TranscribesTheRealClipInEveryFormat) {
  CliRun json_run = run_cli("transcribe " + model_ + " " + clip_ + " --format json");
  ASSERT_EQ(json_run.status, 0) << json_run.output;
  const json result = json::parse(json_run.output);
  ASSERT_FALSE(result["segments"].empty());
  EXPECT_DOUBLE_EQ(result["duration"].get<double>(), 11.0);
  for (const auto& s : result["segments"]) {
    for (const char* key : {"start", "end", "text", "avg_logprob", "no_speech_prob", "tokens"})
      EXPECT_TRUE(s.contains(key)) << key;
    EXPECT_LE(s["start"].get<double>(), s["end"].get<double>());
  }
  CliRun txt = run_cli("transcribe " + model_ + " " + clip_ + " --language en --format txt");
  ASSERT_EQ(txt.status, 0) << txt.output;
  CliRun srt = run_cli("transcribe " + model_ + " " + clip_ + " --format srt");
  ASSERT_EQ(srt.status, 0) << srt.output;
  EXPECT_EQ(srt.output.rfind("1\n00:00:", 0), 0u) << srt.output;
  EXPECT_NE(srt.output.find(" --> "), std::string::npos);
  CliRun vtt = run_cli("transcribe " + model_ + " " + clip_ + " --format vtt --beam 2");
  ASSERT_EQ(vtt.status, 0) << vtt.output;
  EXPECT_EQ(vtt.output.rfind("WEBVTT\n\n", 0), 0u) << vtt.output;
  // The Hugging Face directory gives the same transcript as OpenAI's checkpoint.
  auto dir = mmlearn::test::temp_dir("out");
  CliRun hf = run_cli("transcribe --model '" + (root_ / "tiny_80" / "hf").string() + "' " + clip_ +
                      " --format json --output-dir '" + dir.string() + "'");
  ASSERT_EQ(hf.status, 0) << hf.output;
  std::ifstream in(dir / "jfk.json");
  EXPECT_EQ(json::parse(in)["text"], result["text"]);
}

TEST_F(CliWhisper, DumpWritesFeaturesEncoderOutputAndLogits) {
  auto out = mmlearn::test::temp_dir("dump") / "jfk.safetensors";
  CliRun r = run_cli("dump " + model_ + " --audio " + clip_ + " --tokens 50258,50259,50359,50363 --out '" +
                     out.string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  auto tensors = mmlearn::load_safetensors(out);
  EXPECT_EQ(tensors.at("input_features").sizes(), (std::vector<int64_t>{80, 3000}));
  EXPECT_EQ(tensors.at("encoder_output").sizes(), (std::vector<int64_t>{1500, 64}));
  EXPECT_EQ(tensors.at("logits").sizes(), (std::vector<int64_t>{4, 51865}));
  auto reference = mmlearn::load_safetensors(root_ / "mel" / "features_80.safetensors").at("jfk");
  EXPECT_LT((tensors.at("input_features") - reference).abs().max().item<double>(), 1e-4);
  CliRun bad =
      run_cli("dump " + model_ + " --audio " + clip_ + " --tokens 99999999 --out '" + out.string() + "'");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("outside the vocabulary"), std::string::npos) << bad.output;
}

TEST_F(CliWhisper, BadAudioAndWrongModelsGetClearErrors) {
  auto dir = mmlearn::test::temp_dir("bad");
  std::ofstream(dir / "empty.wav").close();
  std::ofstream(dir / "notes.mp3") << "not audio at all\n";
  CliRun empty = run_cli("transcribe " + model_ + " '" + (dir / "empty.wav").string() + "'");
  EXPECT_EQ(empty.status, 1);
  EXPECT_NE(empty.output.find("empty.wav: empty file"), std::string::npos) << empty.output;
  CliRun text = run_cli("transcribe " + model_ + " '" + (dir / "notes.mp3").string() + "'");
  EXPECT_EQ(text.status, 1);
  EXPECT_NE(text.output.find("notes.mp3: not a readable audio"), std::string::npos) << text.output;
  CliRun clip_model = run_cli("transcribe --model '" + (model_dir() / "run").string() + "' " + clip_);
  EXPECT_EQ(clip_model.status, 2);
  EXPECT_NE(clip_model.output.find("transcribe needs a Whisper model; the model given is a clip model"),
            std::string::npos)
      << clip_model.output;
  CliRun language = run_cli("transcribe " + model_ + " " + clip_ + " --language xx");
  EXPECT_EQ(language.status, 2);
  EXPECT_NE(language.output.find("unknown language \"xx\""), std::string::npos) << language.output;
}

TEST(CliAudioText, TrainsEvaluatesAndRefusesMisuse) {
  auto dir = mmlearn::test::temp_dir("clap-cli");
  const std::string data = (dir / "data").string(), run = (dir / "run").string();
  ASSERT_EQ(run_cli("data shapes --audio --out " + data + " --train 24 --test 8 --image-size 32").status, 0);
  CliRun train = run_cli("train --preset clap-tiny --data " + data + " --out " + run +
                         " --steps 3 --batch-size 8 --vocab-size 600 --json");
  ASSERT_EQ(train.status, 0) << train.output;
  EXPECT_EQ(json::parse(train.output.substr(train.output.rfind("{\"eval\"")))["steps"], 3);
  CliRun eval = run_cli("eval --model " + run + " --data " + data + " --json");
  ASSERT_EQ(eval.status, 0) << eval.output;
  const json metrics = json::parse(eval.output);
  EXPECT_EQ(metrics["retrieval"]["n"], 8);
  EXPECT_TRUE(metrics["retrieval"]["text_to_audio"].contains("R@1"));
  CliRun models = run_cli("models");
  EXPECT_NE(models.output.find("clap-tiny"), std::string::npos) << models.output;
  CliRun embed = run_cli("embed --model " + run + " --audio " + data +
                         "/audio/test/000001.wav --text 'a red star' --json");
  ASSERT_EQ(embed.status, 0) << embed.output;
  const json embeddings = json::parse(embed.output);
  ASSERT_EQ(embeddings.size(), 2u);
  EXPECT_TRUE(embeddings[0].contains("audio"));
  double norm = 0;
  for (double v : embeddings[0]["embedding"]) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-4);
  EXPECT_EQ(embeddings[1]["embedding"].size(), embeddings[0]["embedding"].size());
  EXPECT_EQ(run_cli("embed --model " + run + " --image x.png").status, 2);

  CliRun misuse = run_cli("train --preset clip-tiny --init-audio-from " + run + " --data " + data +
                          " --out " + (dir / "x").string());
  EXPECT_EQ(misuse.status, 2);
  EXPECT_NE(misuse.output.find("--init-audio-from does not apply to clip-tiny"), std::string::npos)
      << misuse.output;
  CliRun not_whisper = run_cli("train --preset clap-tiny --init-audio-from " + run + " --data " + data +
                               " --out " + (dir / "y").string() + " --steps 1 --batch-size 8");
  EXPECT_EQ(not_whisper.status, 1);
  EXPECT_NE(not_whisper.output.find("Whisper"), std::string::npos) << not_whisper.output;
}

// Multimodal classification from the command line, on a small mood data set: train, eval, predict with a
// modality missing, and the errors users meet.
TEST(CliClassify, TrainsEvaluatesPredictsAndRefusesBadInput) {
  auto dir = mmlearn::test::temp_dir("classify-cli");
  const std::string data = (dir / "mood").string(), run = (dir / "run").string();
  CliRun made = run_cli("data shapes --task mood --out " + data + " --train 200 --test 40 --seed 1 --json");
  ASSERT_EQ(made.status, 0) << made.output;
  EXPECT_NEAR(json::parse(made.output)["ceiling"]["image"].get<double>(), 0.65, 1e-9);

  CliRun train = run_cli("train --task classify --modalities image,text --fusion late --data " + data +
                         " --out " + run + " --steps 6 --batch-size 16 --json");
  ASSERT_EQ(train.status, 0) << train.output;
  const json trained = json::parse(train.output.substr(train.output.rfind("{\"eval\"")));
  EXPECT_EQ(trained["steps"], 6);
  EXPECT_EQ(trained["eval"]["n"], 40);
  EXPECT_EQ(mmlearn::read_json_file(dir / "run" / "config.json")["fusion"]["method"], "late-mean");

  // The saved model scores what the trainer scored.
  CliRun eval = run_cli("eval --model " + run + " --data " + data + " --json");
  ASSERT_EQ(eval.status, 0) << eval.output;
  const json metrics = json::parse(eval.output);
  EXPECT_EQ(metrics["accuracy"], trained["eval"]["accuracy"]);
  EXPECT_TRUE(metrics.contains("macro_f1"));
  CliRun without = run_cli("eval --model " + run + " --data " + data + " --without text --json");
  ASSERT_EQ(without.status, 0) << without.output;
  EXPECT_EQ(json::parse(without.output)["n"], 40);

  const std::string image = data + "/images/test/000000.png";
  CliRun both =
      run_cli("predict --model " + run + " --image " + image + " --text 'what a great movie' --json");
  ASSERT_EQ(both.status, 0) << both.output;
  const json p = json::parse(both.output);
  EXPECT_EQ(p["used"], json({"image", "text"}));
  double total = 0;
  for (const auto& [label, prob] : p["probabilities"].items()) total += prob.get<double>();
  EXPECT_NEAR(total, 1.0, 1e-5);
  EXPECT_TRUE(p["probabilities"].contains(p["label"].get<std::string>()));
  for (const char* m : {"image", "text"}) {
    ASSERT_TRUE(p["without"][m].is_object()) << p.dump();
    const auto& w = p["without"][m];
    const std::string label = p["label"];
    EXPECT_NEAR(w["change"].get<double>(),
                w["probabilities"][label].get<double>() - p["probabilities"][label].get<double>(), 1e-9);
  }
  CliRun text_only = run_cli("predict --model " + run + " --text 'the exam is at noon' --json");
  ASSERT_EQ(text_only.status, 0) << text_only.output;
  EXPECT_EQ(json::parse(text_only.output)["used"], json({"text"}));
  EXPECT_TRUE(json::parse(text_only.output)["without"]["text"].is_null());

  CliRun audio = run_cli("predict --model " + run + " --audio x.wav --text hi");
  EXPECT_EQ(audio.status, 2);
  EXPECT_NE(audio.output.find("not trained with audio (it reads image, text)"), std::string::npos)
      << audio.output;
  EXPECT_EQ(run_cli("predict --model " + run).status, 2);
  CliRun fusion =
      run_cli("train --task classify --fusion average --data " + data + " --out " + (dir / "x").string());
  EXPECT_EQ(fusion.status, 2);
  EXPECT_NE(fusion.output.find("unknown fusion \"average\""), std::string::npos) << fusion.output;
  EXPECT_EQ(
      run_cli("train --task classify --modalities smell --data " + data + " --out " + (dir / "y").string())
          .status,
      2);

  std::ofstream(dir / "bad.jsonl") << R"({"image": "mood/images/test/000000.png", "label": "positive"})"
                                   << "\n"
                                   << R"({"label": "negative", "words": "none"})"
                                   << "\n";
  CliRun empty = run_cli("eval --model " + run + " --data " + (dir / "bad.jsonl").string());
  EXPECT_EQ(empty.status, 1);
  EXPECT_NE(empty.output.find("bad.jsonl:2: the record has none of the fields"), std::string::npos)
      << empty.output;
  std::ofstream(dir / "label.jsonl") << R"({"text": "hello", "label": "ecstatic"})"
                                     << "\n";
  CliRun label = run_cli("eval --model " + run + " --data " + (dir / "label.jsonl").string());
  EXPECT_EQ(label.status, 1);
  EXPECT_NE(label.output.find("label \"ecstatic\", which the model does not know"), std::string::npos)
      << label.output;
}

TEST(CliClassify, HearsTheVoiceToo) {
  auto dir = mmlearn::test::temp_dir("classify-audio");
  const std::string data = (dir / "mood").string(), run = (dir / "run").string();
  ASSERT_EQ(run_cli("data shapes --task mood --audio --out " + data + " --train 16 --test 4 --image-size 24")
                .status,
            0);
  CliRun train = run_cli("train --task classify --modalities text,audio --fusion bottleneck --data " + data +
                         " --out " + run + " --steps 2 --batch-size 8 --json");
  ASSERT_EQ(train.status, 0) << train.output;
  CliRun predict = run_cli("predict --model " + run + " --audio " + data + "/audio/test/000000.wav --json");
  ASSERT_EQ(predict.status, 0) << predict.output;
  EXPECT_EQ(json::parse(predict.output)["used"], json({"audio"}));
  CliRun image = run_cli("predict --model " + run + " --image " + data + "/images/test/000000.png");
  EXPECT_EQ(image.status, 2);
  EXPECT_NE(image.output.find("not trained with image (it reads text, audio)"), std::string::npos)
      << image.output;
}
