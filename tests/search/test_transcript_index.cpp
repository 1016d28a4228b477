// Spoken-word search: utterances are found at the pauses, to the sample where the sound starts; the index
// finds the utterance that says a phrase, narrows the span to its words, and keeps what was added.
#include <gtest/gtest.h>

#include <cmath>

#include "../test_util.h"
#include "mmlearn/audio/voice_activity.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/search/transcript_index.h"

namespace mmlearn::search {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// Tone bursts (a sound from start to end, seconds) over digital silence, 16 kHz.
std::vector<float> bursts(const std::vector<std::pair<double, double>>& spans, double seconds) {
  std::vector<float> samples(static_cast<size_t>(seconds * 16000), 0.0f);
  for (const auto& [start, end] : spans)
    for (auto i = static_cast<size_t>(start * 16000); i < static_cast<size_t>(end * 16000); ++i)
      samples[i] = 0.3f * static_cast<float>(std::sin(2 * M_PI * 220 * static_cast<double>(i) / 16000));
  return samples;
}

TEST(VoiceActivity, CutsAtPausesAndStartsAtTheFirstSound) {
  // Two words 0.2 s apart (one utterance), a pause of 0.9 s, a third word.
  const auto samples = bursts({{0.5, 1.0}, {1.2, 1.6}, {2.5, 3.1}}, 4.0);
  const auto spans = audio::speech_spans(samples, 16000);
  ASSERT_EQ(spans.size(), 2u);
  // sin(0) is 0: the first sample above the floor is the burst's second or third.
  EXPECT_NEAR(spans[0].start, 0.5, 0.001);
  EXPECT_NEAR(spans[0].end, 1.6 + 0.1, 0.04);
  EXPECT_NEAR(spans[1].start, 2.5, 0.001);
  EXPECT_NEAR(spans[1].end, 3.1 + 0.1, 0.04);
  EXPECT_TRUE(audio::speech_spans(std::vector<float>(16000, 0.0f), 16000).empty());
  // A long utterance is cut into pieces that fit a recognizer's window.
  const auto cut = audio::speech_spans(bursts({{0.0, 9.0}}, 9.5), 16000, {.max_span = 4.0});
  ASSERT_EQ(cut.size(), 3u);
  for (const auto& s : cut) EXPECT_LE(s.end - s.start, 4.0 + 1e-9);
}

TEST(TranscriptIndex, FindsWhereAPhraseIsSaid) {
  const fs::path dir = test::temp_dir("transcripts");
  {
    auto idx = TranscriptIndex::create(dir, "/models/asr", "whisper");
    idx.add(
        "/talks/a.wav", {{"audio", "/talks/a.wav"}, {"speaker", "ann"}},
        {{0.0, 2.0, "a large red star"}, {3.0, 5.0, "two objects: a small blue circle and a green square"}});
    idx.add("/talks/b.wav", {{"audio", "/talks/b.wav"}}, {{1.0, 4.0, "a small green square on the left"}});
    EXPECT_NE(test::error_of([&] { idx.add("/talks/a.wav", json::object(), {}); }).find("already holds"),
              std::string::npos);
  }
  auto idx = TranscriptIndex::open(dir);  // what was added is there after reopening
  EXPECT_EQ(idx.info()["count"], 2);
  EXPECT_EQ(idx.info()["utterances"], 3);
  EXPECT_EQ(idx.info()["kind"], "transcript");

  auto hits = idx.search("Small Blue Circle", 5);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].key, "/talks/a.wav");
  EXPECT_FLOAT_EQ(hits[0].score, 1.0f);  // every word, in order
  EXPECT_EQ(hits[0].record["speaker"], "ann");
  EXPECT_EQ(hits[0].record["transcript"], "two objects: a small blue circle and a green square");
  // The words' span: their place in the utterance's text, in its time.
  const double start = hits[0].record["start"], end = hits[0].record["end"];
  EXPECT_GT(start, 3.0 + 2.0 * 15 / 51 - 0.01);
  EXPECT_LT(end, 3.0 + 2.0 * 35 / 51 + 0.01);

  // "green square" is said in both; the whole phrase ranks the recording that says it in a row first.
  hits = idx.search("a small green square", 5);
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].key, "/talks/b.wav");
  EXPECT_GT(hits[0].score, hits[1].score);
  EXPECT_TRUE(idx.search("purple", 5).empty());
  EXPECT_TRUE(idx.search("?!", 5).empty());

  EXPECT_EQ(idx.remove({"/talks/a.wav", "/talks/none.wav"}), 1);
  EXPECT_EQ(idx.search("blue circle", 5).size(), 0u);
  EXPECT_EQ(idx.info()["utterances"], 1);
}

// The verbs with a recognizer (random weights: what it hears is noise, but the index is whole and
// searchable).
TEST(TranscriptIndexCli, BuildsDescribesSearchesAndServesASpokenWordIndex) {
  const fs::path root = test::whisper_fixture();
  if (root.empty()) GTEST_SKIP() << "no Whisper assets";
  const fs::path dir = test::temp_dir("transcripts-cli");
  data::generate_shapes(dir / "speech", {.n_train = 3, .n_test = 0, .seed = 2, .audio = true});
  const std::string model = (root / "tiny_80" / "hf").string(), idx = (dir / "idx").string();
  auto r = test::run_cli(str_cat("index build --model ", model, " --data ",
                                 (dir / "speech" / "train.jsonl").string(), " --out ", idx, " --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["added"], 3);
  r = test::run_cli("index info --json --index " + idx);
  ASSERT_EQ(r.status, 0) << r.output;
  const json info = json::parse(r.output);
  EXPECT_EQ(info["kind"], "transcript");
  EXPECT_EQ(info["count"], 3);
  r = test::run_cli(str_cat("search --index ", idx, " --text 'a red circle' --json"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(json::parse(r.output)["results"].is_array());
  for (const std::string& bad : std::vector<std::string>{" --image x.png", " --text hi --model " + model})
    EXPECT_EQ(test::run_cli(str_cat("search --index ", idx, bad)).status, 2) << bad;
  r = test::run_cli(str_cat("index build --model ", model, " --data ",
                            (dir / "speech" / "train.jsonl").string(), " --out ", (dir / "idx2").string(),
                            " --kind hnsw"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--kind does not apply"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mmlearn::search
