// The one trainer: every training flag either changes a run of every family or is refused by name; values
// out of range are usage errors before anything is read; --resume refuses what cannot change and honours
// what can.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/data/mood.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/text/learn_tokenizer.h"
#include "mmlearn/train/trainer.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// Small data sets shared by the tests of this file: spoken shapes scenes and the mood task.
const fs::path& fixtures() {
  static const fs::path dir = [] {
    Progress::set_enabled(false);
    const fs::path d = test::shared_fixture("trainer-data", [](const fs::path& d) {
      data::generate_shapes(d / "shapes",
                            {.n_train = 24, .n_test = 4, .seed = 5, .image_size = 32, .audio = true});
      data::generate_mood(d / "mood", {.n_train = 48, .n_test = 8, .seed = 5});
      data::generate_shapes(
          d / "edit",
          {.n_train = 24, .n_test = 4, .seed = 5, .image_size = 32, .task = data::ShapesTask::edit});
      data::generate_shapes(
          d / "vqa",
          {.n_train = 24, .n_test = 4, .seed = 5, .image_size = 32, .task = data::ShapesTask::vqa});
      return true;
    });
    if (d.empty()) ADD_FAILURE() << "the trainer tests' data could not be made";
    return d;
  }();
  return dir;
}

const fs::path& prepared();

TrainOptions small(const std::string& preset, const fs::path& out) {
  const bool combiner = preset == "combiner";  // composes a CLIP: trained first (prepared())
  TrainOptions o{.preset = preset,
                 .data = fixtures() / (preset == "fusion-tiny" ? "mood"
                                       : combiner              ? "edit"
                                                               : "shapes"),
                 .out = out,
                 .steps = 3,
                 .batch_size = 4,
                 .precision = "fp32",  // not "auto": the same on every CPU
                 .eval_every = 1000,
                 .eval_samples = 4,
                 // Whisper learns byte ranks; the others byte-level BPE over 512 symbols
                 .vocab_size = combiner                          ? std::nullopt
                               : preset == "whisper-tiny-shapes" ? std::optional<int64_t>(300)
                                                                 : std::optional<int64_t>(600),
                 .init_from = combiner ? prepared() / "clip-tiny-2" : fs::path()};
  // A generator trains its UNet from the second step, so that what conditions it shows.
  if (preset == "generator-tiny") o.autoencoder_steps = 1;
  return o;
}

// The weight files of the model a run wrote: model.safetensors, or a generator's parts.
const std::vector<fs::path> kModelFiles = {"model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                                           "unet/diffusion_pytorch_model.safetensors"};
std::string model_bytes(const fs::path& run) {
  std::string out;
  for (const fs::path& file : kModelFiles)
    if (fs::exists(run / file)) out += read_file(run / file);
  return out;
}

// What a run leaves behind, to tell two runs apart: its weights, its metrics (less the wall clock), its
// checkpoints, its step count — or the error that stopped it.
std::string fingerprint(const TrainOptions& o) {
  std::string out;
  try {
    const TrainResult r = train(o);
    out += str_cat("steps ", r.steps, " of ", r.total_steps, "\n");
  } catch (const Error& e) {
    return str_cat("error: ", e.what());
  }
  out += model_bytes(o.out);
  std::ifstream metrics(o.out / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    json j = json::parse(line);
    j.erase("seconds");
    out += j.dump() + "\n";
  }
  if (fs::exists(o.out / "checkpoint"))
    for (const auto& e : fs::directory_iterator(o.out / "checkpoint"))
      out += e.path().filename().string() + "\n";
  return out;
}

struct FlagCase {
  std::string flag;
  std::function<void(TrainOptions&)> set;
  std::function<void(TrainOptions&)> base = nullptr;  // what both runs need for the flag to show (if read)
};

// One case per option: adding an option without a case here fails FlagsCoverEveryOption.
std::vector<FlagCase> flag_cases(const fs::path& work) {
  return {
      {"steps", [](TrainOptions& o) { o.steps = 2; }},
      {"epochs", [](TrainOptions& o) { o.steps = 0, o.epochs = 1; }},
      {"minutes", [](TrainOptions& o) { o.steps = 0, o.minutes = 0.001; }},
      {"batch-size", [](TrainOptions& o) { o.batch_size = 6; }},
      {"lr", [](TrainOptions& o) { o.learning_rate = 0.02; }},
      {"weight-decay", [](TrainOptions& o) { o.weight_decay = 5.0; }},
      {"warmup", [](TrainOptions& o) { o.warmup_steps = 3; }},
      {"grad-clip", [](TrainOptions& o) { o.grad_clip = 1e-4; }},
      {"accumulate", [](TrainOptions& o) { o.accumulate = 2; }},
      {"precision", [](TrainOptions& o) { o.precision = "bf16"; }},
      {"seed", [](TrainOptions& o) { o.seed = 1; }},
      {"eval-every", [](TrainOptions& o) { o.eval_every = 1; }},
      {"eval-samples", [](TrainOptions& o) { o.eval_samples = 2; }},
      {"checkpoint-every", [](TrainOptions& o) { o.checkpoint_every = 1; }},
      {"keep-checkpoints", [](TrainOptions& o) { o.keep_checkpoints = 1; },
       [](TrainOptions& o) { o.checkpoint_every = 1; }},
      {"stop-after", [](TrainOptions& o) { o.stop_after = 1; }},
      {"max-bad", [](TrainOptions& o) { o.max_bad = 0; },
       [work](TrainOptions& o) {
         o.data = work / (o.preset == "fusion-tiny" ? "mood-bad"
                          : o.preset == "combiner"  ? "edit-bad"
                                                    : "shapes-bad");
       }},
      {"tokenizer", [work](TrainOptions& o) { o.tokenizer = work / "tokenizer"; }},
      {"vocab-size", [](TrainOptions& o) { o.vocab_size = o.vocab_size.value_or(600) - 20; }},
      {"init-from", [work](TrainOptions& o) { o.init_from = work / "clip-tiny"; }},
      {"init-audio-from", [work](TrainOptions& o) { o.init_audio_from = work / "whisper-tiny-shapes"; }},
      {"freeze-towers", [](TrainOptions& o) { o.freeze_towers = true; },
       [work](TrainOptions& o) { o.init_from = work / "clip-tiny"; }},
      {"max-image-pixels", [](TrainOptions& o) { o.max_image_pixels = 100; }},
      {"hard-negatives", [](TrainOptions& o) { o.hard_negatives = true; }},
      {"ctc-weight", [](TrainOptions& o) { o.ctc_weight = 0.0; }},
      {"modalities", [](TrainOptions& o) { o.modalities = {"text"}; }},
      {"fusion", [](TrainOptions& o) { o.fusion = "late"; }},
      {"modality-dropout", [](TrainOptions& o) { o.modality_dropout = 0.9; }},
      {"unimodal-loss", [](TrainOptions& o) { o.unimodal_loss = 0.0; }},
      {"label-field", [](TrainOptions& o) { o.label_field = "expression"; }},
      {"dim", [](TrainOptions& o) { o.dim = 32; }},
      {"connector", [](TrainOptions& o) { o.connector = "prefix"; }},
      {"blind", [](TrainOptions& o) { o.blind = true; }},
      {"caption-weight", [](TrainOptions& o) { o.caption_weight = 0.0; }},
      {"autoencoder-steps", [](TrainOptions& o) { o.autoencoder_steps = 2; }},
      {"autoencoder-lr", [](TrainOptions& o) { o.autoencoder_lr = 1e-2; }},
      {"noise-schedule", [](TrainOptions& o) { o.noise_schedule = "cosine"; }},
      {"prediction", [](TrainOptions& o) { o.prediction = "v"; }},
      {"snr-gamma", [](TrainOptions& o) { o.snr_gamma = 0.5; }},  // (below most steps' SNR)
      {"ema-decay", [](TrainOptions& o) { o.ema_decay = 0.0; }},
      {"train-text-encoder", [](TrainOptions& o) { o.train_text_encoder = true; },
       [work](TrainOptions& o) { o.init_from = work / "clip-tiny"; }},
  };
}

// Options that choose what and where a run is, tested on their own (family dispatch, data, resume).
const std::set<std::string> kStructural = {"preset", "task", "data"};

// The runs the cases build on: a trained clip-tiny and whisper-tiny-shapes (init-from, init-audio-from) and
// a tokenizer (tokenizer).
const fs::path& prepared() {
  static const fs::path work = [] {
    const fs::path w = test::shared_fixture("trainer-prepared", [](const fs::path& w) {
      train(small("clip-tiny", w / "clip-tiny"));
      TrainOptions other = small("clip-tiny", w / "clip-tiny-2");  // what a combiner starts from by default
      other.seed = 2;
      train(other);
      train(small("whisper-tiny-shapes", w / "whisper-tiny-shapes"));
      text::learn_tokenizer(fixtures() / "shapes" / "train.jsonl", 560).save(w / "tokenizer");
      // The data sets with one more training record, whose media cannot be read (max-bad).
      for (const std::string set : {"shapes", "mood", "edit"}) {
        fs::copy(fixtures() / set, w / (set + "-bad"), fs::copy_options::recursive);
        std::ofstream(w / (set + "-bad") / "train.jsonl", std::ios::app)
            << R"({"image": "missing.png", "audio": "missing.wav", "target": "missing.png", )"
            << R"("text": "a red circle", "label": "positive"})"
            << "\n";
      }
      return true;
    });
    if (w.empty()) ADD_FAILURE() << "the runs the trainer tests build on could not be made";
    return w;
  }();
  return work;
}

void every_flag_changes_the_run_or_is_refused(const std::string& preset) {
  const ModelFamily& family = family_of_preset(preset);
  const fs::path work = prepared(), dir = test::temp_dir(preset);
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);  // the same run every time, so that only the flag can change it
  int i = 0;
  std::string plain;  // the run with no flag set: the same for every case without a base, so run once
  for (const FlagCase& c : flag_cases(work)) {
    SCOPED_TRACE("--" + c.flag + " for " + preset);
    TrainOptions with = small(preset, dir / ("with-" + std::to_string(i))),
                 without = small(preset, dir / ("without-" + std::to_string(i)));
    ++i;
    c.set(with);
    if (family_flags().count(c.flag) && !family.train_flags.count(c.flag)) {
      const std::string error = test::error_of([&] { train(with); });
      EXPECT_NE(error.find("--" + c.flag + " does not apply to " + preset), std::string::npos) << error;
      continue;
    }
    if (c.base) c.base(with), c.base(without);
    if (!c.base && plain.empty()) plain = fingerprint(without);
    const std::string a = c.base ? fingerprint(without) : plain, b = fingerprint(with);
    EXPECT_EQ(a.rfind("error", 0), std::string::npos) << a;
    EXPECT_TRUE(a != b) << "the flag changed nothing";  // (the fingerprints are binary: not printed)
  }
  torch::set_num_threads(threads);
}

TEST(Trainer, FlagsCoverEveryOption) {
  TrainOptions all;
  all.batch_size = 1, all.learning_rate = 1, all.weight_decay = 1, all.precision = "fp32",
  all.eval_samples = 1;
  all.vocab_size = 1, all.ctc_weight = 1, all.modalities = {"text"}, all.fusion = "x",
  all.modality_dropout = 0;
  all.unimodal_loss = 0, all.label_field = "x", all.dim = 1, all.connector = "x", all.blind = true;
  all.caption_weight = 1, all.autoencoder_steps = 1, all.autoencoder_lr = 1, all.noise_schedule = "x",
  all.prediction = "x";
  all.snr_gamma = 1, all.ema_decay = 0;
  std::set<std::string> covered = kStructural;
  for (const auto& c : flag_cases({})) covered.insert(c.flag);
  const json options = to_json(all);
  for (const auto& [key, value] : options.items()) EXPECT_TRUE(covered.count(key)) << "no case for --" << key;
}

TEST(Trainer, EveryFlagChangesAClipRunOrIsRefused) { every_flag_changes_the_run_or_is_refused("clip-tiny"); }
TEST(Trainer, EveryFlagChangesAClapRunOrIsRefused) { every_flag_changes_the_run_or_is_refused("clap-tiny"); }
TEST(Trainer, EveryFlagChangesAWhisperRunOrIsRefused) {
  every_flag_changes_the_run_or_is_refused("whisper-tiny-shapes");
}
TEST(Trainer, EveryFlagChangesAClassifierRunOrIsRefused) {
  every_flag_changes_the_run_or_is_refused("fusion-tiny");
}
TEST(Trainer, EveryFlagChangesACombinerRunOrIsRefused) {
  every_flag_changes_the_run_or_is_refused("combiner");
}
TEST(Trainer, EveryFlagChangesACaptionerRunOrIsRefused) {
  every_flag_changes_the_run_or_is_refused("captioner-tiny");
}
TEST(Trainer, EveryFlagChangesAGeneratorRunOrIsRefused) {
  every_flag_changes_the_run_or_is_refused("generator-tiny");
}

// A question answerer learns its records' captions too, unless --caption-weight 0 (the captioner refuses the
// flag: EveryFlagChangesACaptionerRunOrIsRefused).
TEST(Trainer, CaptionWeightChangesAQuestionAnswerersRun) {
  const fs::path dir = test::temp_dir("vqa");
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  TrainOptions with = small("vqa-tiny", dir / "with"), without = small("vqa-tiny", dir / "without"),
               half = small("vqa-tiny", dir / "half");
  for (TrainOptions* o : {&with, &without, &half}) o->data = fixtures() / "vqa";
  without.caption_weight = 0.0;
  half.caption_weight = 0.5;
  const std::string a = fingerprint(with), b = fingerprint(without), c = fingerprint(half);
  EXPECT_EQ(a.rfind("error", 0), std::string::npos) << a;
  EXPECT_TRUE(a != b && a != c && b != c);
  torch::set_num_threads(threads);
}

TEST(Trainer, OutOfRangeValuesAreUsageErrorsBeforeAnyWork) {
  const fs::path missing = "/nonexistent/data";  // never read: the values are checked first
  auto refused = [&](const std::function<void(TrainOptions&)>& set, const std::string& flag) {
    TrainOptions o{.preset = "clip-tiny", .data = missing, .out = test::temp_dir("run")};
    set(o);
    try {
      train(o);
      ADD_FAILURE() << flag << " was accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    } catch (const Error& e) {
      ADD_FAILURE() << flag << ": not a usage error: " << e.what();
    }
  };
  refused([](TrainOptions& o) { o.steps = -1; }, "--steps");
  refused([](TrainOptions& o) { o.given.insert("steps"); }, "--steps");  // --steps 0
  refused([](TrainOptions& o) { o.epochs = -2; }, "--epochs");
  refused([](TrainOptions& o) { o.max_bad = -1; }, "--max-bad");
  refused([](TrainOptions& o) { o.given.insert("epochs"); }, "--epochs");
  refused([](TrainOptions& o) { o.minutes = -1; }, "--minutes");
  refused([](TrainOptions& o) { o.batch_size = 0; }, "--batch-size");
  refused([](TrainOptions& o) { o.learning_rate = std::nan(""); }, "--lr");
  refused([](TrainOptions& o) { o.learning_rate = -1; }, "--lr");
  refused([](TrainOptions& o) { o.weight_decay = -0.1; }, "--weight-decay");
  refused([](TrainOptions& o) { o.grad_clip = std::numeric_limits<double>::infinity(); }, "--grad-clip");
  refused([](TrainOptions& o) { o.accumulate = 0; }, "--accumulate");
  refused([](TrainOptions& o) { o.batch_size = 10, o.accumulate = 3; }, "--accumulate");
  refused([](TrainOptions& o) { o.precision = "fp8"; }, "--precision");
  refused([](TrainOptions& o) { o.eval_samples = 0; }, "--eval-samples");
  refused([](TrainOptions& o) { o.keep_checkpoints = 0; }, "--keep-checkpoints");
  refused([](TrainOptions& o) { o.vocab_size = 5; }, "--vocab-size");
  refused([](TrainOptions& o) { o.ctc_weight = 1.5; }, "--ctc-weight");
  refused([](TrainOptions& o) { o.steps = 5, o.minutes = 1; }, "--minutes");
  refused([](TrainOptions& o) { o.preset = "clip-huge"; }, "unknown preset");
  refused([](TrainOptions& o) { o.preset = "", o.task = "dance"; }, "unknown task");
  refused([](TrainOptions& o) { o.task = "speech"; }, "--task");
  refused([](TrainOptions& o) { o.preset = "captioner-tiny", o.connector = "mlp"; }, "--connector");
  refused([](TrainOptions& o) { o.preset = "vqa-tiny", o.caption_weight = -1; }, "--caption-weight");
  refused([](TrainOptions& o) { o.preset = "vqa-tiny", o.caption_weight = std::nan(""); },
          "--caption-weight");
  refused([](TrainOptions& o) { o.preset = "generator-tiny", o.noise_schedule = "sqrt"; },
          "--noise-schedule");
  refused([](TrainOptions& o) { o.preset = "generator-tiny", o.prediction = "x0"; }, "--prediction");
  refused([](TrainOptions& o) { o.preset = "generator-tiny", o.snr_gamma = -1; }, "--snr-gamma");
  refused([](TrainOptions& o) { o.preset = "generator-tiny", o.ema_decay = 1; }, "--ema-decay");
  refused([](TrainOptions& o) { o.preset = "generator-tiny", o.autoencoder_lr = 0; }, "--autoencoder-lr");
  refused([](TrainOptions& o) { o.preset = "generator-tiny", o.autoencoder_lr = std::nan(""); },
          "--autoencoder-lr");
}

TEST(Trainer, ResumeRefusesWhatCannotChangeAndHonoursALongerRun) {
  const fs::path out = test::temp_dir("run");
  TrainOptions o = small("clip-tiny", out);
  o.stop_after = 2;
  EXPECT_FALSE(train(o).finished);
  TrainOptions again = o;
  again.resume = true;
  again.stop_after = 0;
  again.seed = 4;
  EXPECT_NE(test::error_of([&] { train(again); }).find("--seed 4 (the run has 0)"), std::string::npos);
  again = TrainOptions{.out = out, .resume = true, .steps = 5};  // nothing else: the run's own options
  const TrainResult r = train(again);
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.steps, 5);
  again.steps = 4;  // the run is at 5 already
  EXPECT_NE(test::error_of([&] { train(again); }).find("ask for more"), std::string::npos);
  // Without --resume an existing run is not overwritten.
  EXPECT_NE(test::error_of([&] { train(small("clip-tiny", out)); }).find("pass --resume"), std::string::npos);
}

// fp64 training reaches every family: the run differs from fp32's, its model directory holds fp32 weights as
// every model does, and a run stopped and resumed ends as the one that never stopped, bit for bit (the
// checkpoint keeps the exact fp64 weights beside the fp32 model).
TEST(Trainer, Fp64TrainsEveryFamilyAndResumesExactly) {
  const fs::path dir = test::temp_dir("fp64");
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  for (const std::string preset : {"clip-tiny", "clap-tiny", "whisper-tiny-shapes", "fusion-tiny", "combiner",
                                   "captioner-tiny", "vqa-tiny", "generator-tiny"}) {
    SCOPED_TRACE(preset);
    auto run = [&](const std::string& name) {
      TrainOptions o = small(preset, dir / preset / name);
      if (preset == "vqa-tiny") o.data = fixtures() / "vqa";
      o.precision = name == "fp32" ? "fp32" : "fp64";
      o.checkpoint_every = 1;
      return o;
    };
    const TrainOptions fp32 = run("fp32"), straight = run("straight");
    TrainOptions stopped = run("stopped");
    stopped.stop_after = 1;
    ASSERT_TRUE(train(fp32).finished);
    ASSERT_TRUE(train(straight).finished);
    ASSERT_FALSE(train(stopped).finished);
    EXPECT_TRUE(fs::exists(stopped.out / "checkpoint" / "step-00000001" / "fp64.safetensors"));
    ASSERT_TRUE(train(TrainOptions{.out = stopped.out, .resume = true}).finished);
    EXPECT_FALSE(model_bytes(straight.out).empty());
    EXPECT_TRUE(model_bytes(straight.out) == model_bytes(stopped.out)) << "the resumed run differs";
    EXPECT_TRUE(model_bytes(straight.out) != model_bytes(fp32.out)) << "fp64 changed nothing";
    for (const fs::path& file : kModelFiles)
      if (fs::exists(straight.out / file))
        for (const auto& [name, t] : load_safetensors(straight.out / file))
          if (t.is_floating_point()) EXPECT_EQ(t.scalar_type(), torch::kFloat) << name;
  }
  torch::set_num_threads(threads);
}

}  // namespace
}  // namespace mmlearn
