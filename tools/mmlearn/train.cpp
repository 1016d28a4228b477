#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/train/clap_trainer.h"
#include "mmlearn/train/clip_trainer.h"
#include "mmlearn/train/fusion_trainer.h"
#include "mmlearn/train/whisper_trainer.h"

namespace mmlearn::cli {

void add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train",
      "train a model: contrastive image–text (clip-*), audio–text (clap-tiny), speech recognition "
      "(whisper-tiny-shapes) or, with --task classify, a multimodal classifier with any fusion");
  auto o = std::make_shared<ClipTrainOptions>();
  auto data = std::make_shared<std::string>(), out = std::make_shared<std::string>(),
       tokenizer = std::make_shared<std::string>(), init_from = std::make_shared<std::string>(),
       init_audio_from = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("--preset", o->preset, "model preset (`mmlearn models` lists them)")->capture_default_str();
  cmd->add_option("--data", *data, "directory with train.jsonl [test.jsonl, classes.json] or a manifest")
      ->required();
  cmd->add_option("--out", *out, "run directory: model files, checkpoint/, metrics.jsonl")->required();
  cmd->add_option("--tokenizer", *tokenizer, "directory with vocab.json + merges.txt (default: learn one)");
  cmd->add_option("--vocab-size", o->tokenizer_vocab_size, "size of the learned tokenizer")
      ->capture_default_str();
  auto* steps = cmd->add_option("--steps", o->steps, "optimizer steps");
  auto* epochs = cmd->add_option("--epochs", o->epochs, "passes over the training data (default 10)");
  auto* minutes = cmd->add_option("--minutes", o->minutes, "train for this long (wall clock)");
  steps->excludes(epochs)->excludes(minutes);
  epochs->excludes(minutes);
  auto* batch = cmd->add_option("--batch-size", o->batch_size, "examples per step (default 128; Whisper 32)");
  auto* lr = cmd->add_option("--lr", o->learning_rate, "peak learning rate (AdamW)")->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay, "AdamW weight decay (matrices only)")
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup_steps, "warm-up steps (default 5% of the run)");
  cmd->add_option("--grad-clip", o->grad_clip, "gradient norm clip")->capture_default_str();
  auto ctc_weight = std::make_shared<double>(WhisperTrainOptions{}.ctc_weight);
  cmd->add_option("--ctc-weight", *ctc_weight,
                  "speech recognition: weight of the auxiliary CTC loss on the encoder (0: none)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_option("--checkpoint-every", o->checkpoint_every,
                  "steps between checkpoints (default: at the end)");
  cmd->add_option("--eval-every", o->eval_every, "steps between evaluations (default: ~10 a run)");
  cmd->add_option("--max-image-pixels", o->max_image_pixels, "refuse images larger than this")
      ->capture_default_str();
  cmd->add_option("--precision", o->precision,
                  "fp32, bf16 (autocast) or auto: bf16 where the CPU has it natively")
      ->capture_default_str();
  cmd->add_option("--stop-after", o->stop_after,
                  "leave after this many steps with a checkpoint (resume later)");
  cmd->add_option("--init-from", *init_from,
                  "start from a pretrained CLIP (mmlearn or HF directory, OpenAI/OpenCLIP state dict) and "
                  "fine-tune it; its architecture and tokenizer replace --preset and --tokenizer");
  cmd->add_option("--init-audio-from", *init_audio_from,
                  "audio–text presets: seed the audio tower with this speech recognizer's encoder "
                  "(a Whisper model of the same encoder size, e.g. a whisper-tiny-shapes run)");
  cmd->add_flag("--freeze-towers", o->freeze_towers,
                "with --init-from: train only the projections and the temperature (a linear probe)");
  cmd->add_flag("--resume", o->resume, "continue the run in --out from its last checkpoint");
  auto task = std::make_shared<std::string>("contrastive");
  cmd->add_option("--task", *task,
                  "contrastive / speech (chosen by --preset), or classify: a multimodal classifier")
      ->check(CLI::IsMember({"contrastive", "classify"}))
      ->capture_default_str();
  auto classify = std::make_shared<FusionTrainOptions>();
  cmd->add_option("--modalities", classify->modalities, "classify: the inputs, from image, text, audio")
      ->delimiter(',')
      ->default_str("image,text");
  cmd->add_option("--fusion", classify->fusion, "classify: fusion method (`mmlearn models` lists them)")
      ->capture_default_str();
  cmd->add_option("--modality-dropout", classify->modality_dropout,
                  "classify: chance of hiding each modality of each example while training (never all)")
      ->capture_default_str();
  cmd->add_option(
         "--unimodal-loss", classify->unimodal_loss,
         "classify: weight of auxiliary per-modality losses that keep every encoder learning (0: none)")
      ->capture_default_str();
  cmd->add_option("--label-field", classify->label_field, "classify: the record field holding the class")
      ->capture_default_str();
  cmd->add_option("--dim", classify->model.dim, "classify: width of the encoders and the fusion")
      ->capture_default_str();
  cmd->add_flag("--json", *as_json, "print the result as JSON on stdout");
  cmd->callback([=] {
    // Either trainer's result, as JSON or as a summary on stderr.
    auto report = [&](const auto& r) {
      nlohmann::json summary{{"out", *out},
                             {"steps", r.steps},
                             {"seconds", r.seconds},
                             {"final_loss", r.final_loss},
                             {"skipped_records", r.skipped_records},
                             {"eval", r.final_eval}};
      if (*as_json) {
        std::cout << summary.dump() << "\n";
        return;
      }
      std::cerr << "trained " << r.steps << " steps in " << r.seconds << " s; final loss " << r.final_loss
                << "; model written to " << *out << "\n";
      if (r.skipped_records) std::cerr << r.skipped_records << " bad records were skipped\n";
      if (!r.final_eval.is_null()) std::cerr << "held-out: " << r.final_eval.dump() << "\n";
    };
    const bool cmd_lr_default = lr->count() == 0;
    if (*task == "classify") {
      if (!tokenizer->empty() || !init_from->empty() || !init_audio_from->empty() || o->resume ||
          o->freeze_towers || cmd->count("--preset"))
        throw UsageError(
            "--task classify trains its encoders from scratch (no --preset, --tokenizer, --init-from, "
            "--init-audio-from, --freeze-towers or --resume yet)");
      if (o->epochs > 0)
        throw UsageError("--task classify trains by --steps or --minutes (default: 20 epochs)");
      FusionTrainOptions c = *classify;
      c.data = *data;
      c.out = *out;
      c.steps = o->steps;
      c.minutes = o->minutes;
      if (batch->count()) c.batch_size = o->batch_size;
      if (!cmd_lr_default) c.learning_rate = o->learning_rate;
      if (o->tokenizer_vocab_size != 1024) c.vocab_size = o->tokenizer_vocab_size;
      c.seed = o->seed;
      c.eval_every = o->eval_every;
      if (o->warmup_steps > 0) c.warmup_steps = o->warmup_steps;
      if (cmd->count("--weight-decay")) c.weight_decay = o->weight_decay;
      if (cmd->count("--grad-clip")) c.grad_clip = o->grad_clip;
      try {
        c.fusion = canonical_fusion_method(c.fusion);
      } catch (const Error& e) {
        throw UsageError(str_cat("--fusion: ", e.what()));
      }
      const auto r = train_fusion_classifier(c);
      report(r);
      return;
    }
    for (const char* flag :
         {"--modalities", "--fusion", "--modality-dropout", "--unimodal-loss", "--label-field", "--dim"})
      if (cmd->count(flag)) throw UsageError(str_cat(flag, " applies to --task classify"));
    o->data = *data;
    o->out = *out;
    o->tokenizer = *tokenizer;
    o->init_from = *init_from;
    if (o->preset.rfind("clap", 0) == 0) {  // audio–text, contrastive
      if (o->epochs > 0) throw UsageError("audio–text presets train by --steps or --minutes");
      if (!tokenizer->empty() || !init_from->empty() || o->resume)
        throw UsageError(
            "audio–text presets learn their vocabulary (no --tokenizer, --init-from or --resume yet); "
            "--init-audio-from seeds the audio tower from a speech recognizer");
      ClapTrainOptions c{.preset = o->preset,
                         .data = *data,
                         .out = *out,
                         .init_audio_from = *init_audio_from,
                         .tokenizer_vocab_size = o->tokenizer_vocab_size,
                         .steps = o->steps,
                         .minutes = o->minutes,
                         .batch_size = o->batch_size,
                         .seed = o->seed,
                         .eval_every = o->eval_every};
      if (!cmd_lr_default) c.learning_rate = o->learning_rate;
      report(train_clap(c));
      return;
    }
    if (!init_audio_from->empty())
      throw UsageError("--init-audio-from applies to audio–text (clap-*) presets");
    if (o->preset.rfind("whisper", 0) == 0) {  // a speech recognizer from scratch
      if (o->epochs > 0) throw UsageError("Whisper presets train by --steps or --minutes");
      if (!tokenizer->empty() || !init_from->empty() || o->resume)
        throw UsageError(
            "Whisper presets learn their vocabulary and start from scratch (no --tokenizer, "
            "--init-from or --resume yet)");
      WhisperTrainOptions w{.preset = o->preset,
                            .data = *data,
                            .out = *out,
                            .steps = o->steps,
                            .minutes = o->minutes,
                            .batch_size = batch->count() ? o->batch_size : 32,
                            .seed = o->seed,
                            .eval_every = o->eval_every};
      w.ctc_weight = *ctc_weight;
      if (o->precision != "auto") w.precision = o->precision;
      if (o->tokenizer_vocab_size != 1024) w.vocab_size = o->tokenizer_vocab_size;
      if (!cmd_lr_default) w.learning_rate = o->learning_rate;
      report(train_whisper(w));
      return;
    }
    report(train_clip(*o));
  });
}

}  // namespace mmlearn::cli
