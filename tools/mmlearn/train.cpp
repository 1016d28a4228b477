#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/distributed/launch.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/train/trainer.h"

namespace mmlearn::cli {

namespace {

// CLI11 writes an optional's value only when the flag is given.
template <class T>
CLI::Option* add_optional(CLI::App* cmd, const std::string& name, std::optional<T>& target,
                          const std::string& help) {
  return cmd->add_option_function<T>(
      name, [&target](const T& value) { target = value; }, help);
}

}  // namespace

void add_train(CLI::App& app) {
  std::string families;
  for (const auto& f : model_families())
    families += str_cat(families.empty() ? "" : ", ", f.task, " (", f.summary, ")");
  auto* cmd =
      app.add_subcommand("train", str_cat("train a model of any family — ", families,
                                          ". Every flag reaches every family, or is refused by name"));
  auto o = std::make_shared<TrainOptions>();
  auto as_json = std::make_shared<bool>(false);
  std::string presets;
  for (const auto& f : model_families()) presets += (presets.empty() ? "" : ", ") + join(f.presets);
  cmd->add_option("--preset", o->preset, "model preset: " + presets + " (`mmlearn models` describes them)");
  std::vector<std::string> tasks;
  for (const auto& f : model_families()) tasks.push_back(f.task);
  cmd->add_option("--task", o->task, "the family by its task, with its default preset: " + join(tasks))
      ->check(CLI::IsMember(tasks));
  cmd->add_option("--data", o->data, "directory with train.jsonl [test.jsonl, classes.json] or a manifest");
  cmd->add_option("--out", o->out, "run directory: model files, checkpoint/, metrics.jsonl")->required();
  cmd->add_flag("--resume", o->resume,
                "continue the run in --out from its latest checkpoint (a longer --steps/--epochs/--minutes "
                "extends it)");
  auto* steps = cmd->add_option("--steps", o->steps, "optimizer steps");
  auto* epochs =
      cmd->add_option("--epochs", o->epochs, "passes over the training data (default: the family's)");
  auto* minutes =
      cmd->add_option("--minutes", o->minutes,
                      "train for this long, setup included: the length is planned from measured steps");
  steps->excludes(epochs)->excludes(minutes);
  epochs->excludes(minutes);
  add_optional(cmd, "--batch-size", o->batch_size,
               "examples per optimizer step (default: clip/clap 128, whisper 32, classify 64)");
  add_optional(cmd, "--lr", o->learning_rate, "peak learning rate (AdamW)");
  add_optional(cmd, "--weight-decay", o->weight_decay, "AdamW weight decay on matrices");
  cmd->add_option("--warmup", o->warmup_steps, "warm-up steps (default 5% of the run)");
  cmd->add_option("--grad-clip", o->grad_clip, "global gradient norm clip (0: none)")->capture_default_str();
  cmd->add_option("--accumulate", o->accumulate, "micro-batches per step: batch-size / N examples each")
      ->capture_default_str();
  add_optional(cmd, "--precision", o->precision,
               "fp32, bf16 (autocast), auto (bf16 where the CPU has it natively) or fp64 (runs that differ "
               "only in threads or workers agree to ~1e-16; about 3x slower)");
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_option("--eval-every", o->eval_every, "steps between held-out evaluations (default: ~5 a run)");
  add_optional(cmd, "--eval-samples", o->eval_samples, "held-out records evaluated during training");
  cmd->add_option("--checkpoint-every", o->checkpoint_every,
                  "steps between checkpoints (default: every 10 minutes)");
  cmd->add_option("--keep-checkpoints", o->keep_checkpoints, "checkpoints kept (the newest)")
      ->capture_default_str();
  cmd->add_option("--stop-after", o->stop_after,
                  "leave after this many steps with a checkpoint (resume later)");
  cmd->add_option(
         "--max-bad", o->max_bad,
         "training records (or shard samples) that may be unreadable; more stop the run, listing them")
      ->capture_default_str();
  // Family options: a family that does not read one refuses it by name.
  cmd->add_option("--tokenizer", o->tokenizer,
                  "clip: directory with vocab.json + merges.txt (default: learn one)");
  add_optional(cmd, "--vocab-size", o->vocab_size, "size of the learned vocabulary");
  cmd->add_option("--init-from", o->init_from,
                  "clip: fine-tune a pretrained CLIP (mmlearn or HF directory, OpenAI/OpenCLIP state dict); "
                  "caption, vqa: start the image tower and tokenizer from a CLIP or a captioner");
  cmd->add_option("--init-audio-from", o->init_audio_from,
                  "audio-text: seed the audio tower with a speech recognizer's encoder of the same size");
  cmd->add_flag("--freeze-towers", o->freeze_towers,
                "with --init-from: clip trains only the projections and the temperature (a linear probe); "
                "caption, vqa keep the image tower as it is");
  cmd->add_option("--max-image-pixels", o->max_image_pixels, "clip: refuse images larger than this");
  cmd->add_flag(
      "--hard-negatives", o->hard_negatives,
      "clip: each caption also competes with its hard negative (NegCLIP): its place words turned to "
      "their opposites, or two attributes of one kind (from the data's classes.json) swapped");
  add_optional(cmd, "--ctc-weight", o->ctc_weight,
               "speech: weight of the auxiliary CTC loss on the encoder (0: none)");
  cmd->add_option("--modalities", o->modalities,
                  "classify: the inputs, from image, text, audio (default image,text)")
      ->delimiter(',');
  add_optional(cmd, "--fusion", o->fusion,
               "classify: fusion method (`mmlearn models` lists them; default concat)");
  add_optional(
      cmd, "--modality-dropout", o->modality_dropout,
      "classify: chance of hiding each modality of each example while training (never all; default 0.15)");
  add_optional(cmd, "--unimodal-loss", o->unimodal_loss,
               "classify: weight of auxiliary per-modality losses (0: none; default 0.5)");
  add_optional(cmd, "--label-field", o->label_field,
               "classify: the record field holding the class (default label)");
  add_optional(
      cmd, "--connector", o->connector,
      "caption, vqa: how the decoder sees the image: cross-attention (BLIP), prefix (LLaVA) or queries "
      "(BLIP-2's Q-Former; default cross-attention)");
  cmd->add_flag("--blind", o->blind,
                "caption, vqa: never show the decoder the image (the language-prior baseline)");
  add_optional(cmd, "--caption-weight", o->caption_weight,
               "vqa: weight of also learning each record's caption (its \"text\", where it has one) from the "
               "same image (0: answers only; default 1)");
  add_optional(cmd, "--autoencoder-steps", o->autoencoder_steps,
               "generate: steps that train the autoencoder before the UNet trains (default 800)");
  add_optional(cmd, "--autoencoder-lr", o->autoencoder_lr,
               "generate: the autoencoder's peak learning rate (default 1e-3; --lr is the UNet's)");
  add_optional(cmd, "--noise-schedule", o->noise_schedule,
               "generate: linear (DDPM's), scaled-linear (Stable Diffusion's; the default) or cosine");
  add_optional(cmd, "--prediction", o->prediction,
               "generate: what the UNet predicts: epsilon (default) or v");
  add_optional(cmd, "--snr-gamma", o->snr_gamma, "generate: Min-SNR-γ loss weighting (0: none; default 5)");
  add_optional(cmd, "--ema-decay", o->ema_decay,
               "generate: decay of the UNet's weight average, which the model directory holds (0: the "
               "last weights; default 0.9999, warmed up as (1 + n) / (10 + n))");
  cmd->add_flag("--train-text-encoder", o->train_text_encoder,
                "generate: with --init-from, the text tower learns with the UNet instead of staying frozen "
                "(without --init-from it always learns)");
  add_optional(cmd, "--dim", o->dim,
               "classify: width of the encoders and the fusion (default 64); composed: the combiner's "
               "projection width "
               "(default 4 x the CLIP's embedding width)");
  auto nproc = std::make_shared<int>(1);
  cmd->add_option("--nproc", *nproc,
                  "data-parallel training on this many local worker processes (Gloo); --batch-size is the "
                  "global batch. Across machines, start one process each with torchrun's variables instead")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N (needs mmlearn built against a CUDA libtorch)")
      ->capture_default_str();
  cmd->add_option("--loader-threads", o->loader_threads,
                  "threads preparing the next batches while a step trains (0: none; default: half the "
                  "cores, 1 to 4); the results do not depend on it")
      ->check(CLI::Range(0, 64));
  cmd->add_flag("--json", *as_json, "print the result as JSON on stdout");
  cmd->callback([=] {
    for (const CLI::Option* option : cmd->get_options())
      if (option->count() && !option->get_lnames().empty()) o->given.insert(option->get_lnames()[0]);
    o->given.erase("nproc");
    o->given.erase("loader-threads");
    o->given.erase("device");
    if (*nproc > 1) {
      if (std::getenv("WORLD_SIZE") || std::getenv("RANK"))
        throw UsageError(
            "--nproc starts its own workers; under torchrun or another launcher (WORLD_SIZE, RANK "
            "set) leave it out");
      validate(*o);
      validate_workers(*o, *nproc, str_cat("--nproc ", *nproc));
      throw ExitStatus{launch_local_workers(*nproc, without_nproc(command_line()))};
    }
    const TrainResult r = train(*o);
    if (r.rank != 0) return;  // rank 0 reports the run
    nlohmann::json summary{{"out", o->out.string()},
                           {"model_type", r.model_type},
                           {"preset", r.preset},
                           {"steps", r.steps},
                           {"total_steps", r.total_steps},
                           {"finished", r.finished},
                           {"seconds", r.seconds},
                           {"final_loss", r.final_loss},
                           {"skipped_records", r.skipped_records},
                           {"skipped_steps", r.skipped_steps},
                           {"parameters", r.parameters},
                           {"eval", r.final_eval}};
    if (*as_json) {
      std::cout << summary.dump() << "\n";
      return;
    }
    std::cerr << (r.finished ? "trained " : "stopped at step ") << r.steps << (r.finished ? " steps" : "")
              << " in " << r.seconds << " s; final loss " << r.final_loss << "; "
              << (r.finished ? "model written to " + o->out.string() : "continue with --resume") << "\n";
    if (r.skipped_records) std::cerr << r.skipped_records << " bad records were skipped\n";
    if (r.skipped_steps) std::cerr << r.skipped_steps << " updates were skipped for a non-finite gradient\n";
    if (!r.final_eval.is_null()) std::cerr << "held-out: " << r.final_eval.dump() << "\n";
  });
}

}  // namespace mmlearn::cli
