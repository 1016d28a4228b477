// Text-to-image through the command line: `train --task generate` writes a generator that `generate` opens;
// the same seed draws the same images, another seed others; the PNGs and the contact sheet are written;
// bad prompts, flags and models end with a clear message and exit status 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/data/image_io.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::run_cli;

struct Runs {
  fs::path dir, scenes, generator, clip;
};

// A generator trained a few steps each way (autoencoder, then UNet): what the verb does with a model, not
// how well it learned.
const Runs& runs() {
  static const Runs r = [] {
    Runs x;
    x.dir = fs::temp_directory_path() / "mmlearn-tests" / ("generate-cli-" + std::to_string(::getpid()));
    fs::remove_all(x.dir);
    x.scenes = x.dir / "scenes", x.generator = x.dir / "generator", x.clip = x.dir / "clip";
    auto ok = [](const std::string& args) {
      const auto run = run_cli(args);
      EXPECT_EQ(run.status, 0) << args << "\n" << run.output;
    };
    ok("data shapes --out " + x.scenes.string() + " --train 32 --test 4 --seed 5");
    ok("train --task generate --data " + x.scenes.string() + " --out " + x.generator.string() +
       " --steps 4 --autoencoder-steps 2 --batch-size 8 --vocab-size 600 --eval-every 1000");
    ok("train --preset clip-tiny --data " + x.scenes.string() + " --out " + x.clip.string() +
       " --steps 1 --batch-size 8 --vocab-size 600 --eval-every 1000");
    return x;
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

TEST(GenerateCli, BadInputsAreUsageErrorsByName) {
  const fs::path dir = test::temp_dir("bad");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {generate_args(dir / "1", "--text ''"), "--text is empty"},
      {generate_args(dir / "2", "--steps 0"), "--steps 0"},
      {generate_args(dir / "3", "--guidance nan"), "--guidance"},
      {generate_args(dir / "4", "--guidance -1"), "--guidance"},
      {generate_args(dir / "5", "--n 0"), "--n 0"},
      {generate_args(dir / "6", "--sampler euler"), "euler"},
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

}  // namespace
}  // namespace mmlearn
