// Captioning and question answering through the command line: `train --task caption|vqa` writes a model
// that `caption`, `ask` and `eval` open; eval's accuracy is the exact-match rate of what `ask` answers; bad
// questions, images, flags and models end with a clear message and the right exit status.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/wer.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::run_cli;

struct Models {
  fs::path dir, scenes, questions, captioner, answerer, clip;
};

// Tiny models, a few steps each: what the verbs do with a model, not how well it learned.
const Models& models() {
  static const Models m = [] {
    Models x;
    x.dir = fs::temp_directory_path() / "mmlearn-tests" / ("caption-cli-" + std::to_string(::getpid()));
    fs::remove_all(x.dir);
    x.scenes = x.dir / "scenes", x.questions = x.dir / "questions", x.captioner = x.dir / "captioner",
    x.answerer = x.dir / "answerer", x.clip = x.dir / "clip";
    auto ok = [](const std::string& args) {
      const auto r = run_cli(args);
      EXPECT_EQ(r.status, 0) << args << "\n" << r.output;
    };
    ok("data shapes --out " + x.scenes.string() + " --train 32 --test 6 --seed 4");
    ok("data shapes --task vqa --out " + x.questions.string() + " --train 32 --test 12 --seed 4");
    ok("train --task caption --data " + x.scenes.string() + " --out " + x.captioner.string() +
       " --steps 2 --batch-size 8 --vocab-size 600 --eval-every 1000");
    ok("train --task vqa --connector prefix --data " + x.questions.string() + " --out " +
       x.answerer.string() + " --steps 2 --batch-size 8 --vocab-size 600 --eval-every 1000");
    ok("train --preset clip-tiny --data " + x.scenes.string() + " --out " + x.clip.string() +
       " --steps 1 --batch-size 8 --vocab-size 600 --eval-every 1000");
    return x;
  }();
  return m;
}

std::string image(const fs::path& data, int i) {
  char name[32];
  std::snprintf(name, sizeof name, "%06d.png", i);
  return (data / "images" / "test" / name).string();
}

TEST(CaptionCli, CaptionAskAndEvalOpenWhatTrainWrites) {
  const Models& m = models();
  auto r = run_cli("caption --model " + m.captioner.string() + " --image " + image(m.scenes, 0) +
                   " --image " + image(m.scenes, 1) + " --beam 2 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const json captions = json::parse(r.output);
  ASSERT_EQ(captions.size(), 2u);
  EXPECT_EQ(captions[1]["image"], image(m.scenes, 1));
  EXPECT_TRUE(captions[0]["caption"].is_string());

  r = run_cli("eval --model " + m.captioner.string() + " --data " + m.scenes.string() + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const json caption_metrics = json::parse(r.output);
  EXPECT_EQ(caption_metrics["samples"], 6);
  for (const char* key : {"bleu4", "cider", "grounded_accuracy"}) {
    EXPECT_GE(caption_metrics[key].get<double>(), 0.0) << key;
    EXPECT_LE(caption_metrics[key].get<double>(), key == std::string("cider") ? 10.0 : 1.0) << key;
  }

  // eval's accuracy, by type, is the share of the test questions that `ask` answers exactly.
  const auto test = data::read_manifest(m.questions / "test.jsonl");
  std::map<std::string, std::pair<int, int>> tally;
  int right = 0;
  for (size_t i = 0; i < test.records.size(); ++i) {
    const auto& record = test.records[i].json;
    const std::string question = record["question"];
    r = run_cli("ask --model " + m.answerer.string() + " --image " + image(m.questions, int(i)) +
                " --question '" + question + "' --json");
    ASSERT_EQ(r.status, 0) << r.output;
    const json answer = json::parse(r.output);
    ASSERT_EQ(answer.size(), 1u);
    EXPECT_EQ(answer[0]["question"], question);
    const bool exact = normalize_transcript(answer[0]["answer"].get<std::string>()) ==
                       normalize_transcript(record["answer"]);
    right += exact;
    tally[record["type"]].first += exact;
    tally[record["type"]].second += 1;
  }
  r = run_cli("eval --model " + m.answerer.string() + " --data " + m.questions.string() + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const json vqa_metrics = json::parse(r.output);
  EXPECT_DOUBLE_EQ(vqa_metrics["accuracy"].get<double>(), double(right) / double(test.records.size()));
  ASSERT_EQ(vqa_metrics["by_type"].size(), tally.size());
  for (const auto& [type, t] : tally)
    EXPECT_DOUBLE_EQ(vqa_metrics["by_type"][type].get<double>(), double(t.first) / double(t.second)) << type;
}

TEST(CaptionCli, BadQuestionsImagesFlagsAndModelsAreRefusedByName) {
  const Models& m = models();
  const fs::path junk = m.dir / "junk.png";
  std::ofstream(junk) << "not an image";
  const std::string ask = "ask --model " + m.answerer.string() + " --image " + image(m.questions, 0);
  const std::string caption = "caption --model " + m.captioner.string() + " --image " + image(m.scenes, 0);
  const struct {
    std::string args;
    int status;
    std::string message;
  } cases[] = {
      {ask + " --question ''", 2, "--question is empty"},
      {ask + " --question '" + std::string(400, 'x') + " ?'", 2, "longer than the model can read"},
      {ask + " --question 'what color?' --beam 0", 2, "--beam"},
      {caption + " --beam 0", 2, "--beam"},
      {caption + " --temperature 0.5 --beam 3", 2, "--temperature"},
      {"caption --model " + m.captioner.string() + " --image " + junk.string(), 1, junk.string()},
      {"caption --model " + m.captioner.string() + " --image " + (m.dir / "missing.png").string(), 1,
       "missing.png"},
      {"caption --model " + m.clip.string() + " --image " + image(m.scenes, 0), 2,
       "caption needs a model that writes text about images"},
      {"caption --model " + m.answerer.string() + " --image " + image(m.scenes, 0), 2, "use `mmlearn ask`"},
      {"ask --model " + m.captioner.string() + " --image " + image(m.scenes, 0) + " --question 'what?'", 2,
       "answers no questions"},
      {"train --task caption --connector bogus --data " + m.scenes.string() + " --out " +
           (m.dir / "x").string(),
       2, "--connector bogus"},
      {"train --preset clip-tiny --blind --data " + m.scenes.string() + " --out " + (m.dir / "y").string(), 2,
       "--blind does not apply"},
      {"train --task caption --freeze-towers --data " + m.scenes.string() + " --out " +
           (m.dir / "z").string(),
       2, "--freeze-towers needs --init-from"},
      {"train --task vqa --data " + m.scenes.string() + " --out " + (m.dir / "w").string(), 1,
       "\"question\""},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\nexpected: " << c.message << "\n"
                                                           << r.output;
  }
}

}  // namespace
}  // namespace mmlearn
