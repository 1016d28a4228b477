// Bad input, as a hostile user would give it, through every verb: each case ends with a clear message, the
// exit status it should have (2 for usage, 1 for input), within bounded memory — never a crash, a hang, an
// unbounded allocation or a wrong answer with exit 0.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "../test_util.h"
#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/data/image_io.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct Case {
  std::string args;     // shell words after `mmlearn`
  int status;           // the exit status expected
  std::string message;  // a piece of the message expected
};

// The files the cases use: data, a trained CLIP and a trained recognizer, and broken copies of them.
struct Fixture {
  fs::path dir;  // where a case writes
  fs::path shapes, speech, clip, whisper;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    const fs::path dir = test::shared_fixture("bad-input", [](const fs::path& d) {
      bool all_ok = true;
      auto ok = [&](const std::string& args) {
        const auto r = test::run_cli(args);
        EXPECT_EQ(r.status, 0) << args << "\n" << r.output;
        all_ok = all_ok && r.status == 0;
      };
      ok("data shapes --out " + (d / "shapes").string() + " --train 64 --test 8 --seed 2");
      ok("data shapes --audio --out " + (d / "speech").string() +
         " --train 8 --test 2 --seed 2 --image-size 32");
      ok("train --preset clip-tiny --data " + (d / "shapes").string() + " --out " + (d / "clip").string() +
         " --steps 2 --batch-size 8 --vocab-size 600 --eval-every 1000");
      ok("train --preset whisper-tiny-shapes --data " + (d / "speech").string() + " --out " +
         (d / "whisper").string() + " --steps 1 --batch-size 4 --vocab-size 280 --eval-samples 1");
      return all_ok;
    });
    if (dir.empty()) ADD_FAILURE() << "the files the cases share could not be made";
    // What the cases write goes to a folder of this process's own: the shared one is only read.
    const fs::path scratch =
        fs::temp_directory_path() / "mmlearn-tests" / ("bad-input-" + std::to_string(::getpid()));
    fs::remove_all(scratch);
    fs::create_directories(scratch);
    return Fixture{scratch, dir / "shapes", dir / "speech", dir / "clip", dir / "whisper"};
  }();
  return f;
}

// A copy of a trained model (by default the CLIP) with its config.json edited by `edit`.
fs::path broken_clip(const std::string& name, const std::function<void(json&)>& edit,
                     const fs::path& model = fixture().clip) {
  const fs::path dir = fixture().dir / name;
  fs::remove_all(dir);
  fs::copy(model, dir, fs::copy_options::recursive);
  json config = read_json_file(model / "config.json");
  edit(config);
  std::ofstream(dir / "config.json") << config.dump();
  return dir;
}

void expect_handled(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const auto r = test::run_cli(c.args);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\nexpected: " << c.message << "\n"
                                                           << r.output;
    EXPECT_LT(r.max_rss_kb, 2 * 1024 * 1024) << c.args << ": " << r.max_rss_kb / 1024 << " MiB";
  }
}

TEST(BadInput, ModelConfigsAreCheckedBeforeAnythingIsBuilt) {
  const Fixture& f = fixture();
  const std::string image = " --image " + (f.shapes / "images" / "test" / "000000.png").string();
  const fs::path layers = broken_clip("layers", [](json& c) { c["text"]["layers"] = 1000000; });
  const fs::path width = broken_clip("width", [](json& c) { c["vision"]["width"] = 1e9; });
  const fs::path big_width = broken_clip("big-width", [](json& c) { c["text"]["width"] = 100000; });
  const fs::path std_zero = broken_clip("std", [](json& c) { c["image_std"] = {0, 0, 0}; });
  const fs::path array = broken_clip("array", [](json& c) { c = json::array({1, 2}); });
  const fs::path flag = broken_clip(
      "flag", [](json& c) { c["timestamps"] = "yes"; }, f.whisper);
  const fs::path kind = broken_clip("kind", [](json& c) { c["model_type"] = 5; });
  expect_handled({
      {"embed --model " + layers.string() + image, 1, "does not match the weights"},
      {"eval --model " + layers.string() + " --data " + f.shapes.string(), 1, "does not match the weights"},
      {"embed --model " + width.string() + image, 1, "width"},
      {"embed --model " + big_width.string() + " --text hello", 1, "does not match the weights"},
      {"embed --model " + std_zero.string() + image, 1, "image_std"},
      {"zero-shot --model " + array.string() + image + " --labels a,b", 1, "config.json"},
      {"transcribe --model " + flag.string() + " " + (f.speech / "audio" / "test" / "000000.wav").string(), 1,
       "config.json: field \"timestamps\" has the wrong type"},
      {"embed --model " + kind.string() + " --text hi", 1, "not a model mmlearn reads"},
  });
}

TEST(BadInput, ImagesOfExtremeShapeAreRefusedCheaply) {
  const Fixture& f = fixture();
  const fs::path strip = f.dir / "strip.png", tall = f.dir / "tall.png";
  data::write_png(strip, {.width = 20000, .height = 1, .rgb = std::vector<uint8_t>(20000 * 3, 128)});
  data::write_png(tall, {.width = 1, .height = 1000000, .rgb = std::vector<uint8_t>(1000000 * 3, 9)});
  expect_handled({
      {"embed --model " + f.clip.string() + " --image " + strip.string(), 1, "aspect ratio"},
      {"zero-shot --model " + f.clip.string() + " --image " + tall.string() + " --labels a,b", 1,
       "aspect ratio"},
  });
}

TEST(BadInput, NumericFlagsOutOfRangeAreUsageErrors) {
  const Fixture& f = fixture();
  const std::string train = "train --data " + f.shapes.string() + " --out " + (f.dir / "never").string();
  expect_handled({
      {train + " --steps -1", 2, "--steps"},
      {train + " --steps 0", 2, "--steps"},
      {train + " --epochs 0", 2, "--epochs"},
      {train + " --minutes -1", 2, "--minutes"},
      {train + " --batch-size 0", 2, "--batch-size"},
      {train + " --lr nan", 2, "--lr"},
      {train + " --accumulate 3 --batch-size 8", 2, "--accumulate"},
      {train + " --ctc-weight 0.5", 2, "--ctc-weight does not apply to clip-tiny"},
      {train + " --loader-threads 100", 2, "--loader-threads"},
      {train + " --device tpu", 2, "--device tpu: expected cpu, cuda or cuda:N"},
      {train + " --device cuda:99", 2, "--device cuda:99: "},  // no CUDA here, or not 100 GPUs
      {"--threads 100000 models", 2, "--threads"},
      {"eval --model " + f.clip.string() + " --data " + (f.dir / "set.tar").string(), 1,
       "is a shard set, which `mmlearn train` reads"},
      {"eval --model " + f.clip.string() + " --data " + f.shapes.string() + " --limit -1", 2, "--limit"},
      {"eval --model " + f.clip.string() + " --data " + f.shapes.string() + " --without text", 2,
       "--without does not apply to a clip model"},
      {"transcribe --model " + f.whisper.string() + " --temperature -1 " +
           (f.speech / "audio" / "test" / "000000.wav").string(),
       2, "--temperature"},
  });
  EXPECT_FALSE(fs::exists(f.dir / "never"));
}

TEST(BadInput, RunsAndFilesAreNotClobbered) {
  const Fixture& f = fixture();
  const fs::path run = f.dir / "resumable";
  ASSERT_EQ(test::run_cli("train --preset clip-tiny --data " + f.shapes.string() + " --out " + run.string() +
                          " --steps 4 --stop-after 2 --batch-size 8 --vocab-size 600")
                .status,
            0);
  const auto checkpoints = fs::directory_iterator(run / "checkpoint");
  const fs::path checkpoint = checkpoints->path();
  expect_handled({
      {"train --resume --out " + run.string() + " --preset clip-tiny-vit", 2, "--preset \"clip-tiny-vit\""},
      {"train --resume --out " + run.string() + " --batch-size 16", 2, "--batch-size 16 (the run has 8)"},
      {"train --data " + f.shapes.string() + " --out " + run.string(), 1, "pass --resume"},
      {"data shapes --out " + f.shapes.string() + " --train 4 --test 1", 2, "--overwrite"},
      {"dump --model " + f.clip.string() + " --text hi --out /nonexistent-dir/x.safetensors", 2,
       "does not exist"},
  });
  EXPECT_FALSE(fs::exists("/nonexistent-dir"));
  // A checkpoint whose optimizer state was cut short names the file.
  const std::string bytes = read_file(checkpoint / "optimizer.pt");
  std::ofstream(checkpoint / "optimizer.pt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_handled({{"train --resume --out " + run.string(), 1, "optimizer.pt"}});
}

TEST(BadInput, EvaluationWithoutUsableRecordsIsAnError) {
  const Fixture& f = fixture();
  const fs::path cut = f.dir / "cut.wav";
  const std::string wav = read_file(f.speech / "audio" / "test" / "000000.wav");
  std::ofstream(cut, std::ios::binary) << wav.substr(0, wav.size() / 3);
  expect_handled({
      {"eval --model " + f.whisper.string() + " --data " + (f.shapes / "test.jsonl").string(), 1,
       "no usable audio + text records"},
      {"transcribe --model " + f.whisper.string() + " " + cut.string(), 1, "truncated"},
      {"embed --model " + f.whisper.string() + " --text hi", 2, "does not embed"},
      {"predict --model " + f.clip.string() + " --text hi", 2, "does not predict"},
      {"transcribe --model " + f.clip.string() + " " + cut.string(), 2, "needs a Whisper model"},
  });
}

// A recognizer trained here never learned timestamps (it decodes behind <|notimestamps|>): its subtitles are
// one cue per window, inside the clip, never the stray timestamp tokens of a barely trained model.
TEST(BadInput, SubtitlesOfARecognizerWithoutTimestampsStayInsideTheClip) {
  const Fixture& f = fixture();
  const fs::path clip = f.speech / "audio" / "test" / "000000.wav";
  const double duration = static_cast<double>(audio::load_audio(clip).size()) / 16000.0;
  const auto r =
      test::run_cli("transcribe --model " + f.whisper.string() + " " + clip.string() + " --format srt");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::regex cue(R"((\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d))");
  auto seconds = [](const std::smatch& m, int first) {
    return std::stoi(m[first]) * 3600.0 + std::stoi(m[first + 1]) * 60.0 + std::stoi(m[first + 2]) +
           std::stoi(m[first + 3]) / 1000.0;
  };
  int cues = 0;
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), cue), end; it != end; ++it, ++cues) {
    const double start = seconds(*it, 1), stop = seconds(*it, 5);
    EXPECT_LE(start, stop) << it->str();
    EXPECT_LE(stop, duration + 0.001) << it->str() << " in a clip of " << duration << " s";
  }
  EXPECT_EQ(cues, 1) << r.output;
}

TEST(BadInput, IndexesAndQueriesAreChecked) {
  const Fixture& f = fixture();
  const std::string idx = (f.dir / "index").string(), test_manifest = (f.shapes / "test.jsonl").string();
  const auto built =
      test::run_cli("index build --model " + f.clip.string() + " --data " + test_manifest + " --out " + idx);
  ASSERT_EQ(built.status, 0) << built.output;
  const fs::path not_db = f.dir / "not-an-index";
  fs::create_directories(not_db);
  std::ofstream(not_db / "index.sqlite")
      << "this is not a database, only text long enough to look like a file";
  std::ofstream(f.dir / "notes.png") << "not an image";
  const std::string build = "index build --data " + test_manifest + " --out " + (f.dir / "index2").string();
  expect_handled({
      {build + " --model " + f.clip.string() + " --kind annoy", 2,
       "expected flat (exact), hnsw, ivf or ivfpq"},
      {build + " --model " + f.clip.string() + " --batch-size 0", 2, "--batch-size"},
      {build + " --model " + f.clip.string() + " --modality audio", 2, "the model embeds image, text"},
      {build + " --model " + f.whisper.string(), 1, "no record has \"audio\""},
      {build + " --model " + f.clip.string() + " --kind ivfpq", 0,
       "trains on at least 1000 items and holds 8"},
      {"search --text hi --index " + (f.dir / "index2").string(), 1,
       "trains on at least 1000 items and holds 8"},
      {"index info --index " + (f.dir / "missing").string(), 1, "holds no index"},
      {"index info --index " + not_db.string(), 1, "is it an mmlearn index database?"},
      {"search --index " + idx + " --text hi --k -3", 2, "--k"},
      {"search --index " + idx + " --text hi --k 1000000000", 2, "--k"},
      {"search --index " + idx + " --audio " + (f.dir / "notes.png").string(), 2, "does not embed audio"},
      {"search --index " + idx + " --image " + (f.dir / "notes.png").string(), 1, "notes.png"},
      {"search --index " + idx + " --model " + f.whisper.string() + " --text hi", 2, "does not embed"},
      {"index remove --index " + idx + " --key nothing-like-it", 1, "not in the index"},
  });
}

}  // namespace
}  // namespace mmlearn
