// WebDataset tar shards: the tar reader on good and damaged archives (ours and GNU tar's), `data pack`,
// training through a shard set with corrupt members up to --max-bad, and streamed training matching training
// on the same records decoded up front.
#include <gtest/gtest.h>

#include <fstream>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/data/mood.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/data/shards.h"
#include "mmlearn/data/tar.h"

namespace mmlearn::data {
namespace {
namespace fs = std::filesystem;

std::vector<TarMember> read_all(const fs::path& path) {
  std::vector<TarMember> out;
  TarReader tar(path);
  for (TarMember m; tar.next(m);) out.push_back(m);
  return out;
}

TEST(Tar, WhatIsWrittenIsReadBackAndGnuTarAgrees) {
  const fs::path dir = test::temp_dir("tar");
  const std::string big(1300, 'x');
  {
    TarWriter w(dir / "a.tar");
    w.add("0001.txt", "a red circle");
    w.add("0001.bin", big);
    w.add("0002.json", "");
    w.finish();
  }
  const auto members = read_all(dir / "a.tar");
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].name, "0001.txt");
  EXPECT_EQ(members[0].data, "a red circle");
  EXPECT_EQ(members[1].data, big);
  EXPECT_EQ(members[2].data, "");
  const auto listed = test::run_shell("tar tf " + (dir / "a.tar").string());
  EXPECT_EQ(listed.output, "0001.txt\n0001.bin\n0002.json\n");
  // And an archive from GNU tar, with a directory entry and a nested name, reads as its files.
  fs::create_directories(dir / "src" / "part");
  write_file_atomic(dir / "src" / "part" / "0003.txt", "blue");
  ASSERT_EQ(
      std::system(("tar cf " + (dir / "g.tar").string() + " -C " + (dir / "src").string() + " part").c_str()),
      0);
  const auto gnu = read_all(dir / "g.tar");
  ASSERT_EQ(gnu.size(), 1u);
  EXPECT_EQ(gnu[0].name, "part/0003.txt");
  EXPECT_EQ(gnu[0].data, "blue");
}

TEST(Tar, DamageIsAnErrorNamingFileAndOffset) {
  const fs::path dir = test::temp_dir("tar");
  {
    TarWriter w(dir / "a.tar");
    w.add("0001.txt", std::string(3000, 'y'));
    w.add("0002.txt", "z");
    w.finish();
  }
  const std::string good = read_file(dir / "a.tar");
  auto damaged = [&](const std::string& name, const std::function<void(std::string&)>& f) {
    std::string bytes = good;
    f(bytes);
    write_file_atomic(dir / name, bytes);
    return test::error_of([&] { read_all(dir / name); });
  };
  EXPECT_NE(damaged("checksum.tar", [](std::string& b) { b[10] ^= 1; })
                .find("checksum.tar: member at byte 0: header checksum"),
            std::string::npos);
  EXPECT_NE(damaged("truncated.tar", [](std::string& b) { b.resize(2000); })
                .find("only 1488 are left in the file (truncated)"),
            std::string::npos);
  EXPECT_NE(damaged("partial.tar", [](std::string& b) { b.resize(3584 + 100); })
                .find("partial.tar: truncated at byte 3584"),
            std::string::npos);
  // A size field that is not octal, with a checksum that matches it.
  const std::string size = damaged("size.tar", [](std::string& b) {
    std::memcpy(&b[124], "99999999999", 11);
    int sum = 0;
    std::memset(&b[148], ' ', 8);
    for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(b[static_cast<size_t>(i)]);
    std::snprintf(&b[148], 8, "%06o", sum);
  });
  EXPECT_NE(size.find("size field is not an octal number"), std::string::npos) << size;
  EXPECT_NE(damaged("cut.tar", [](std::string& b) { b.resize(3584); })
                .find("cut.tar: truncated at byte 3584 (no end-of-archive block)"),
            std::string::npos);
  write_file_atomic(dir / "empty.tar", std::string(1024, '\0'));
  EXPECT_TRUE(read_all(dir / "empty.tar").empty());
}

TEST(Shards, BraceRangesNameEveryShardAndAMissingOneIsAnError) {
  const fs::path dir = test::temp_dir("shards");
  for (const char* n : {"000008.tar", "000009.tar", "000010.tar"}) TarWriter(dir / n).finish();
  const auto paths = shard_paths(dir.string() + "/{000008..000010}.tar");
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(paths[2].filename(), "000010.tar");
  EXPECT_EQ(shard_paths(dir).size(), 3u);
  EXPECT_NE(test::error_of([&] {
              shard_paths(dir.string() + "/{000008..000011}.tar");
            }).find("000011.tar not found"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { shard_paths(dir.string() + "/{9..1}.tar"); }).find("must count up"),
            std::string::npos);
}

// Packs a shapes set into shards, damages one image and the end of one shard, and trains through them: the
// shard's lost end is found when the set is indexed, the damaged image when a batch first decodes it.
TEST(Shards, TrainingGoesThroughCorruptSamplesUpToMaxBad) {
  const fs::path dir = test::temp_dir("shards");
  ASSERT_EQ(test::run_cli("data shapes --out " + (dir / "shapes").string() + " --train 48 --test 4").status,
            0);
  const auto packed = test::run_cli("data pack --json --data " + (dir / "shapes").string() + " --out " +
                                    (dir / "shards").string() + " --per-shard 16");
  ASSERT_EQ(packed.status, 0) << packed.output;
  EXPECT_NE(packed.output.find("\"samples\":48,\"shards\":3"), std::string::npos) << packed.output;
  std::string one = read_file(dir / "shards" / "000001.tar");
  const size_t png = one.find("\x89PNG");
  ASSERT_NE(png, std::string::npos);
  std::fill(one.begin() + static_cast<int64_t>(png) + 16, one.begin() + static_cast<int64_t>(png) + 200,
            '\0');
  write_file_atomic(dir / "shards" / "000001.tar", one);
  fs::resize_file(dir / "shards" / "000002.tar", fs::file_size(dir / "shards" / "000002.tar") / 2);

  // Three passes over the set: every sample is decoded.
  const std::string args = " --preset clip-tiny --steps 12 --batch-size 8 --vocab-size 600 --data '" +
                           (dir / "shards").string() + "/{000000..000002}.tar' --out ";
  const auto through = test::run_shell(str_cat(MMLEARN_CLI, " train", args, (dir / "run").string()));
  EXPECT_EQ(through.status, 0) << through.output;
  EXPECT_NE(through.output.find("000002.tar: "), std::string::npos) << through.output;
  EXPECT_NE(through.output.find("the rest of this shard is skipped"), std::string::npos) << through.output;
  EXPECT_NE(through.output.find("000001.tar: sample 00000016.png: "), std::string::npos)
      << through.output;  // the damaged image's sample, the first of its shard
  EXPECT_NE(through.output.find("2 bad records were skipped"), std::string::npos) << through.output;

  const auto stopped = test::run_cli("train" + args + (dir / "strict").string() + " --max-bad 1");
  EXPECT_EQ(stopped.status, 1) << stopped.output;
  EXPECT_NE(stopped.output.find("2 training records could not be read, more than --max-bad 1"),
            std::string::npos)
      << stopped.output;
  EXPECT_NE(stopped.output.find("000002.tar"), std::string::npos) << stopped.output;
  EXPECT_NE(stopped.output.find("000001.tar: sample 00000016"), std::string::npos) << stopped.output;
  EXPECT_FALSE(fs::exists(dir / "strict" / "model.safetensors"));

  // NegCLIP's negatives are made from every caption up front, which a streamed set does not hold.
  const auto negatives = test::run_cli("train" + args + (dir / "negatives").string() + " --hard-negatives");
  EXPECT_EQ(negatives.status, 2) << negatives.output;
  EXPECT_NE(negatives.output.find("--hard-negatives needs a manifest"), std::string::npos)
      << negatives.output;
}

// Streamed from shards, its batches prepared on loader threads, a run ends with the weights it reaches on
// the same records decoded up front without them: members decode to the same pixels, audio and text as the
// files they were packed from, and neither the loader nor its threads change what a step sees.
void streamed_equals_pre_decoded(const std::string& preset, const fs::path& data, const std::string& flags) {
  const fs::path dir = test::temp_dir("streamed-" + preset);
  const auto packed = test::run_cli(
      str_cat("data pack --data ", data.string(), " --out ", (dir / "shards").string(), " --per-shard 10"));
  ASSERT_EQ(packed.status, 0) << packed.output;
  const std::string args =
      str_cat(" train --preset ", preset, flags,
              " --steps 3 --batch-size 8 --seed 3 --precision fp32 --vocab-size 600 --out ");
  const auto decoded = test::run_cli(str_cat(args, (dir / "decoded").string(), " --data ",
                                             (data / "train.jsonl").string(), " --loader-threads 0"));
  ASSERT_EQ(decoded.status, 0) << decoded.output;
  const auto streamed = test::run_cli(str_cat(args, (dir / "streamed").string(), " --data ",
                                              (dir / "shards").string(), " --loader-threads 2"));
  ASSERT_EQ(streamed.status, 0) << streamed.output;
  EXPECT_TRUE(read_file(dir / "decoded" / "model.safetensors") ==
              read_file(dir / "streamed" / "model.safetensors"))
      << "the weights differ";
}

TEST(Shards, StreamedImageTextTrainsAsPreDecoded) {
  const fs::path data = test::temp_dir("streamed-shapes") / "shapes";
  generate_shapes(data, {.n_train = 24, .n_test = 2, .seed = 4, .image_size = 32});
  streamed_equals_pre_decoded("clip-tiny", data, "");
}

TEST(Shards, StreamedImageTextAudioTrainsAsPreDecoded) {
  const fs::path data = test::temp_dir("streamed-mood") / "mood";
  generate_mood(data, {.n_train = 24, .n_test = 2, .seed = 4, .audio = true});
  streamed_equals_pre_decoded("fusion-tiny", data, " --modalities image,text,audio");
}

}  // namespace
}  // namespace mmlearn::data
