// Text-to-image through the command line: `train --task generate` writes a generator that `generate` and
// `edit` open and `eval --task generate` judges; the same seed draws the same images, another seed others;
// the PNGs and the contact sheet are written; bad prompts, images, flags and models end with a clear message
// and exit status 2.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/data/image_io.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::run_cli;

struct Runs {
  fs::path dir, scenes, generator, clip, edits, editor;
};

// A generator trained a few steps each way (autoencoder, then UNet): what the verb does with a model, not
// how well it learned. Made once for all the tests of this file (they only read it).
const Runs& runs() {
  static const Runs r = [] {
    const fs::path dir = test::shared_fixture("generate-cli", [](const fs::path& d) {
      bool all_ok = true;
      auto ok = [&](const std::string& args) {
        const auto run = run_cli(args);
        EXPECT_EQ(run.status, 0) << args << "\n" << run.output;
        all_ok = all_ok && run.status == 0;
      };
      const std::string scenes = (d / "scenes").string(), edits = (d / "edits").string();
      ok("data shapes --out " + scenes + " --train 32 --test 24 --seed 5");
      ok("train --task generate --data " + scenes + " --out " + (d / "generator").string() +
         " --steps 4 --autoencoder-steps 2 --batch-size 8 --vocab-size 600 --eval-every 1000");
      ok("train --preset clip-tiny --data " + scenes + " --out " + (d / "clip").string() +
         " --steps 1 --batch-size 8 --vocab-size 600 --eval-every 1000");
      // An instruction editor made from the generator, trained a few steps on edit triplets.
      ok("data shapes --task edit --out " + edits + " --train 32 --test 4 --seed 5");
      ok("train --preset editor-tiny --init-from " + (d / "generator").string() + " --data " + edits +
         " --out " + (d / "editor").string() + " --steps 3 --batch-size 8 --eval-every 2 --eval-samples 2");
      return all_ok;
    });
    if (dir.empty()) ADD_FAILURE() << "the generator runs the tests share could not be made";
    return Runs{dir, dir / "scenes", dir / "generator", dir / "clip", dir / "edits", dir / "editor"};
  }();
  return r;
}

// `more` may set --n and --steps (2 and 3 otherwise).
std::string generate_args(const fs::path& out, const std::string& more = "") {
  return str_cat("generate --model ", runs().generator.string(), " --text 'a red circle' ",
                 more.find("--n ") == std::string::npos ? "--n 2 " : "",
                 more.find("--steps ") == std::string::npos ? "--steps 3 " : "", more, " --out ",
                 out.string());
}

TEST(GenerateCli, WritesTheImagesAndASheetAndTheSameSeedDrawsTheSame) {
  const fs::path dir = test::temp_dir("draw");
  auto r = run_cli(generate_args(dir / "a", "--seed 7 --json --text 'a blue square'"));
  ASSERT_EQ(r.status, 0) << r.output;
  const json listing = json::parse(r.output);
  ASSERT_EQ(listing.size(), 2u);
  EXPECT_EQ(listing[1]["text"], "a blue square");
  EXPECT_EQ(listing[1]["seed"], 8);
  ASSERT_EQ(listing[0]["files"].size(), 2u);
  const data::Image first = data::read_image(listing[0]["files"][0].get<std::string>());
  EXPECT_EQ(first.width, 64);
  EXPECT_EQ(first.height, 64);
  const data::Image sheet = data::read_image(dir / "a" / "sheet.png");
  EXPECT_GT(sheet.width, 2 * 64);   // two a row
  EXPECT_GT(sheet.height, 2 * 64);  // two prompts

  ASSERT_EQ(run_cli(generate_args(dir / "b", "--seed 7 --text 'a blue square'")).status, 0);
  ASSERT_EQ(run_cli(generate_args(dir / "c", "--seed 8 --text 'a blue square'")).status, 0);
  EXPECT_EQ(read_file(dir / "a" / "000.png"), read_file(dir / "b" / "000.png"));
  EXPECT_NE(read_file(dir / "a" / "000.png"), read_file(dir / "c" / "000.png"));
  EXPECT_NE(read_file(dir / "a" / "000.png"), read_file(dir / "a" / "001.png"));  // two draws of one prompt
}

// The stochastic samplers draw with noise of their own: DDIM at η > 0 leaves the flow, dpm++2m-sde runs.
TEST(GenerateCli, StochasticSamplersDrawAndDdimEtaAddsNoise) {
  const fs::path dir = test::temp_dir("eta");
  ASSERT_EQ(run_cli(generate_args(dir / "flow", "--n 1 --sampler ddim")).status, 0);
  ASSERT_EQ(run_cli(generate_args(dir / "eta", "--n 1 --sampler ddim --eta 1")).status, 0);
  EXPECT_NE(read_file(dir / "flow" / "000.png"), read_file(dir / "eta" / "000.png"));
  const auto sde = run_cli(generate_args(dir / "sde", "--n 1 --sampler dpm++2m-sde"));
  EXPECT_EQ(sde.status, 0) << sde.output;
  EXPECT_EQ(data::read_image(dir / "sde" / "000.png").width, 64);
}

TEST(GenerateCli, BadInputsAreUsageErrorsByName) {
  const fs::path dir = test::temp_dir("bad");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {generate_args(dir / "1", "--text ''"), "--text is empty"},
      {generate_args(dir / "2", "--steps 0"), "--steps 0"},
      {generate_args(dir / "3", "--guidance nan"), "--guidance"},
      {generate_args(dir / "4", "--guidance -1"), "--guidance"},
      {generate_args(dir / "5", "--n 0"), "--n 0"},
      {generate_args(dir / "6", "--sampler euler"), "euler"},
      {generate_args(dir / "8", "--sampler ddim --eta 1.5"), "--eta 1.5"},
      {generate_args(dir / "9", "--sampler ddim --eta nan"), "--eta nan"},
      {generate_args(dir / "10", "--sampler dpm++2m --eta 0.5"), "--eta is DDIM's"},
      {str_cat("generate --model ", runs().clip.string(), " --text 'a red circle' --out ",
               (dir / "7").string()),
       "generate needs a generator"},
  };
  for (const auto& [args, words] : cases) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(words), std::string::npos) << args << "\n" << r.output;
  }
  // A folder that holds files already is left alone.
  fs::create_directories(dir / "full");
  write_file_atomic(dir / "full" / "keep.txt", "mine\n");
  const auto r = run_cli(generate_args(dir / "full"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("is not empty"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(dir / "full" / "keep.txt"), "mine\n");
}

// The held-out prompts the judge should be given: records with labels (one object), and records of two
// distinct (colour, shape) objects whose caption names a relation between them.
std::pair<int64_t, int64_t> expected_prompts(int64_t limit) {
  int64_t single = 0, pairs = 0;
  std::ifstream in(runs().scenes / "test.jsonl");
  for (std::string line; std::getline(in, line);) {
    const json r = json::parse(line);
    if (r.contains("labels")) {
      single += single < limit;
      continue;
    }
    if (r["objects"].size() != 2) continue;
    const auto& o = r["objects"];
    if (o[0]["color"] == o[1]["color"] && o[0]["shape"] == o[1]["shape"]) continue;
    const std::string text = r["text"];
    bool relation = false;
    for (const char* word : {" left of ", " right of ", " above ", " below "})
      relation = relation || text.find(word) != std::string::npos;
    pairs += relation && pairs < limit;
  }
  return {single, pairs};
}

// `more` may set --task and --steps (generate and 2 otherwise).
std::string eval_args(const std::string& more) {
  return str_cat("eval --model ", runs().generator.string(), " --data ", runs().scenes.string(),
                 more.find("--task ") == std::string::npos ? " --task generate" : "",
                 more.find("--steps ") == std::string::npos ? " --steps 2 " : " ", more);
}

TEST(GenerateCli, EvalJudgesTheDrawnPicturesAndTheRealOnes) {
  const fs::path dir = test::temp_dir("judge");
  const auto r = run_cli(eval_args(
      str_cat("--judge ", runs().clip.string(), " --limit 5 --json --samples ", (dir / "drawn").string())));
  ASSERT_EQ(r.status, 0) << r.output;
  const json m = json::parse(r.output);
  const auto [single, pairs] = expected_prompts(5);
  ASSERT_GT(single, 0);
  ASSERT_GT(pairs, 0);
  for (const json& s : {m, m["judge_on_real"], m["judge_on_autoencoded"]}) {
    EXPECT_EQ(s["single"]["n"], single);
    EXPECT_EQ(s["pairs"]["n"], pairs);
    for (const char* a : {"color", "shape", "size", "one_object"}) {
      EXPECT_GE(s["single"][a].get<double>(), 0);
      EXPECT_LE(s["single"][a].get<double>(), 1);
    }
    EXPECT_LE(s["pairs"]["relation"].get<double>(), s["pairs"]["both_objects"].get<double>());
    EXPECT_GE(s["pairs"]["two_objects"].get<double>(), 0);
    EXPECT_GE(s["clip_score"].get<double>(), 0);
    EXPECT_LE(s["clip_score"].get<double>(), 100);
  }
  EXPECT_GT(m["frechet"].get<double>(), 0);
  EXPECT_EQ(m["steps"], 2);
  const json listing = json::parse(read_file(dir / "drawn" / "prompts.json"));
  ASSERT_EQ(static_cast<int64_t>(listing.size()), single + pairs);
  EXPECT_EQ(listing[0]["kind"], "single");
  EXPECT_EQ(listing.back()["kind"], "pair");
  EXPECT_EQ(data::read_image(dir / "drawn" / listing[0]["file"].get<std::string>()).width, 64);
}

TEST(GenerateCli, EvalRefusesAMissingOrUnfitJudgeAndBadFlags) {
  const fs::path dir = test::temp_dir("bad-judge");
  const std::string judge = " --judge " + runs().clip.string();
  fs::create_directories(dir / "full");
  write_file_atomic(dir / "full" / "keep.txt", "mine\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {eval_args(""), "--judge is required"},
      {eval_args("--judge " + (runs().generator / "text_encoder").string()), "own text encoder"},
      {eval_args("--judge " + runs().generator.string()), "the judge must be a CLIP"},
      {eval_args(judge + " --task caption"), "--task caption"},
      {eval_args(judge + " --steps 0"), "--steps 0"},
      {eval_args(judge + " --guidance nan"), "--guidance"},
      {eval_args(judge + " --sampler euler"), "euler"},
      {eval_args(judge + " --eta 0.5"), "--eta is DDIM's"},  // the model's own sampler is not DDIM
      {eval_args(judge + " --sampler ddim --eta -1"), "--eta -1"},
      {eval_args(judge + " --samples " + (dir / "full").string()), "is not empty"},
      {str_cat("eval --model ", runs().clip.string(), " --data ", runs().scenes.string(), judge),
       "--judge does not apply to a clip model"},
  };
  for (const auto& [args, words] : cases) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(words), std::string::npos) << args << "\n" << r.output;
  }
}

// `more` may set --text and --steps ('a red circle' and 4 otherwise).
std::string edit_args(const fs::path& out, const std::string& more) {
  return str_cat("edit --model ", runs().generator.string(), " --image ",
                 (runs().scenes / "images" / "test" / "000000.png").string(),
                 more.find("--text ") == std::string::npos ? " --text 'a red circle'" : "",
                 more.find("--steps ") == std::string::npos ? " --steps 4 " : " ", more, " --out ",
                 out.string());
}

TEST(GenerateCli, EditRedrawsAPictureAndTheSameSeedEditsTheSame) {
  const fs::path dir = test::temp_dir("edit");
  const auto r = run_cli(edit_args(dir / "a", "--n 2 --seed 3 --strength 0.5 --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  const json listing = json::parse(r.output);
  ASSERT_EQ(listing["files"].size(), 2u);
  EXPECT_EQ(listing["strength"], 0.5);
  EXPECT_EQ(data::read_image(listing["files"][0].get<std::string>()).width, 64);
  ASSERT_EQ(run_cli(edit_args(dir / "b", "--n 1 --seed 3 --strength 0.5")).status, 0);
  ASSERT_EQ(run_cli(edit_args(dir / "c", "--n 1 --seed 3 --strength 1")).status, 0);
  EXPECT_EQ(read_file(dir / "a" / "000.png"), read_file(dir / "b" / "000.png"));
  EXPECT_NE(read_file(dir / "a" / "000.png"), read_file(dir / "c" / "000.png"));
  EXPECT_NE(read_file(dir / "a" / "000.png"), read_file(dir / "a" / "001.png"));
}

TEST(GenerateCli, EditRefusesBadImagesAndFlagsByName) {
  const fs::path dir = test::temp_dir("bad-edit");
  data::write_png(dir / "small.png", data::Image{32, 32, std::vector<uint8_t>(32 * 32 * 3, 90)});
  write_file_atomic(dir / "broken.png", "\x89PNG\r\n\x1a\nnot an image");
  const std::string source = (runs().scenes / "images" / "test" / "000000.png").string();
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {edit_args(dir / "1", "--text ''"), 2, "--text is empty"},
      {edit_args(dir / "2", "--strength 0"), 2, "--strength 0"},
      {edit_args(dir / "3", "--strength 1.5"), 2, "--strength 1.5"},
      {edit_args(dir / "4", "--steps 0"), 2, "--steps 0"},
      {edit_args(dir / "5", "--guidance nan"), 2, "--guidance"},
      {edit_args(dir / "6", "--strength 0.1"), 2, "leaves no step to denoise"},
      {edit_args(dir / "10", "--sampler ddpm --eta 0.5"), 2, "--eta is DDIM's"},
      {str_cat("edit --model ", runs().generator.string(), " --image ", (dir / "small.png").string(),
               " --text 'a red circle' --out ", (dir / "7").string()),
       2, "is 32x32"},
      {str_cat("edit --model ", runs().generator.string(), " --image ", (dir / "broken.png").string(),
               " --text 'a red circle' --out ", (dir / "8").string()),
       1, "broken.png"},
      {str_cat("edit --model ", runs().clip.string(), " --image ", source, " --text 'a red circle' --out ",
               (dir / "9").string()),
       2, "edit needs a generator"},
  };
  for (const auto& [args, status, words] : cases) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.status, status) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(words), std::string::npos) << args << "\n" << r.output;
  }
}

std::string instruct_args(const fs::path& out, const std::string& more) {
  return str_cat("edit --model ", runs().editor.string(), " --image ",
                 (runs().edits / "images" / "test" / "000000.png").string(),
                 " --text 'make the circle red' --steps 3 ", more, " --out ", out.string());
}

TEST(GenerateCli, AnEditorMadeFromTheGeneratorEditsByInstruction) {
  const fs::path dir = test::temp_dir("instruct");
  const auto r = run_cli(instruct_args(dir / "a", "--n 2 --seed 4 --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  const json listing = json::parse(r.output);
  EXPECT_EQ(listing["method"], "instruct");
  EXPECT_FALSE(listing.contains("strength"));
  ASSERT_EQ(listing["files"].size(), 2u);
  ASSERT_EQ(run_cli(instruct_args(dir / "b", "--n 1 --seed 4")).status, 0);
  ASSERT_EQ(run_cli(instruct_args(dir / "c", "--n 1 --seed 4 --image-guidance 3")).status, 0);
  EXPECT_EQ(read_file(dir / "a" / "000.png"), read_file(dir / "b" / "000.png"));
  EXPECT_NE(read_file(dir / "a" / "000.png"), read_file(dir / "c" / "000.png"));
  // Its training drew the sources and their edits at each evaluation, and the report shows them.
  EXPECT_TRUE(fs::exists(runs().editor / "samples" / "step-00000002" / "sheet.png"));
  EXPECT_NE(read_file(runs().editor / "report.html").find("samples at step 2"), std::string::npos);
  // The editor's UNet takes the source latent too; the rest is the generator's layout.
  const json unet = json::parse(read_file(runs().editor / "unet" / "config.json"));
  EXPECT_EQ(unet["in_channels"], 8);
}

// An editor keeps the generator's text tower as it is (InstructPix2Pix keeps CLIP's), unless
// --train-text-encoder: a tower learned on captions then learns the instructions' words too.
TEST(GenerateCli, AnEditorKeepsTheTextTowerUnlessTrainTextEncoder) {
  const auto text = [](const fs::path& model) {
    return read_file(model / "text_encoder" / "model.safetensors");
  };
  EXPECT_EQ(text(runs().generator), text(runs().editor));
  const fs::path out = test::temp_dir("text-learns") / "editor";
  const auto r = run_cli(str_cat("train --preset editor-tiny --init-from ", runs().generator.string(),
                                 " --data ", runs().edits.string(), " --out ", out.string(),
                                 " --steps 1 --batch-size 8 --eval-samples 2 --train-text-encoder"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(text(runs().generator), text(out));
}

// On edit triplets eval judges edits: an editor's by instruction, a generator's by SDEdit, each triplet once,
// counted by kind, beside the judge's reading of the targets and of the unchanged sources.
TEST(GenerateCli, EvalJudgesEditsByInstructionAndBySDEdit) {
  const fs::path dir = test::temp_dir("edit-judge");
  for (const auto& [model, method] :
       {std::pair{runs().editor, "instruct"}, std::pair{runs().generator, "sdedit"}}) {
    const fs::path samples = dir / method;
    const auto r =
        run_cli(str_cat("eval --model ", model.string(), " --data ", runs().edits.string(), " --judge ",
                        runs().clip.string(), " --steps 3 --json --samples ", samples.string()));
    ASSERT_EQ(r.status, 0) << r.output;
    const json m = json::parse(r.output);
    ASSERT_TRUE(m["edit"].contains(method)) << m.dump();
    EXPECT_EQ(m["edit"].size(), 1u);
    EXPECT_EQ(m["n"], 4);
    int64_t counted = 0;
    for (const auto& [kind, v] : m["by_kind"].items()) counted += v["n"].get<int64_t>();
    EXPECT_EQ(counted, 4);
    for (const double share :
         {m["edit"][method].get<double>(), m["judge_on_real"].get<double>(), m["unchanged"].get<double>()}) {
      EXPECT_GE(share, 0);
      EXPECT_LE(share, 1);
    }
    EXPECT_EQ(m.contains("strength"), std::string(method) == "sdedit");
    const json listing = json::parse(read_file(samples / "edits.json"));
    ASSERT_EQ(listing.size(), 4u);
    EXPECT_EQ(data::read_image(samples / listing[0]["file"].get<std::string>()).width, 64);
    if (std::string(method) == "sdedit")  // SDEdit is told what the target holds, not what to change
      EXPECT_EQ(listing[0]["text"].get<std::string>().rfind("a", 0), 0u) << listing[0]["text"];
  }
}

// A run too short to reach the UNet trains the autoencoder alone, and says so before it spends the time.
TEST(GenerateCli, WarnsWhenTheRunEndsBeforeTheUNet) {
  const fs::path dir = test::temp_dir("generate-short");
  const auto run = run_cli(str_cat("train --task generate --data ", runs().scenes.string(), " --out ",
                                   (dir / "run").string(),
                                   " --steps 2 --autoencoder-steps 2 --batch-size 8 --vocab-size 600"));
  EXPECT_EQ(run.status, 0) << run.output;
  const auto warning = run.output.find("only the autoencoder trains");
  ASSERT_NE(warning, std::string::npos) << run.output;
  EXPECT_LT(warning, run.output.find("trained 2 steps")) << run.output;
}

TEST(GenerateCli, EditorsAndGeneratorsRefuseWhatTheOtherDoes) {
  const fs::path dir = test::temp_dir("instruct-bad");
  const std::string data = " --data " + runs().edits.string();
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {instruct_args(dir / "1", "--strength 0.5"), 2, "--strength is SDEdit's"},
      {edit_args(dir / "2", "--image-guidance 2"), 2, "--image-guidance is an instruction editor's"},
      {instruct_args(dir / "3", "--image-guidance nan"), 2, "--image-guidance"},
      {str_cat("generate --model ", runs().editor.string(), " --text 'a red circle' --out ",
               (dir / "4").string()),
       2, "is an instruction editor"},
      {str_cat("eval --model ", runs().editor.string(), " --data ", runs().scenes.string(), " --judge ",
               runs().clip.string()),
       2, "is judged on edit triplets"},
      {str_cat("eval --model ", runs().editor.string(), data, " --judge ", runs().clip.string(),
               " --strength 0.5"),
       2, "--strength is SDEdit's"},
      {str_cat("eval --model ", runs().generator.string(), data, " --judge ", runs().clip.string(),
               " --image-guidance 2"),
       2, "--image-guidance is an instruction editor's"},
      {str_cat("eval --model ", runs().generator.string(), " --data ", runs().scenes.string(), " --judge ",
               runs().clip.string(), " --strength 0.5"),
       2, "--strength applies to judging SDEdit edits"},
      {str_cat("eval --model ", runs().generator.string(), data, " --judge ", runs().clip.string(),
               " --strength 0.01"),
       2, "leaves no step to denoise"},
      {str_cat("train --preset generator-tiny --init-from ", runs().editor.string(), data,
               " --steps 1 --out ", (dir / "5").string()),
       2, "is an instruction editor"},
      {str_cat("train --task generate --data ", runs().scenes.string(),
               " --steps 1 --train-text-encoder --out ", (dir / "5b").string()),
       2, "--train-text-encoder needs --init-from"},
      {str_cat("train --preset editor-tiny --init-from ", runs().generator.string(), data,
               " --steps 1 --autoencoder-steps 4 --out ", (dir / "6").string()),
       2, "--autoencoder-steps does not apply"},
      {str_cat("train --preset editor-tiny --init-from ", runs().generator.string(), data,
               " --steps 1 --autoencoder-lr 1e-4 --out ", (dir / "6b").string()),
       2, "--autoencoder-lr does not apply"},
      {str_cat("train --preset editor-tiny --init-from ", runs().generator.string(), " --data ",
               runs().scenes.string(), " --steps 1 --out ", (dir / "7").string()),
       1, "no \"target\" picture"},
  };
  for (const auto& [args, status, words] : cases) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.status, status) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(words), std::string::npos) << args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace mmlearn
