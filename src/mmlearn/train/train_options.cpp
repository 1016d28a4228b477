#include "mmlearn/train/train_options.h"

#include <cmath>

#include "mmlearn/core/error.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Every option once, under its flag name: to_json, from_json and given_flags walk this one table.
template <class Visitor>
void visit(TrainOptions& o, Visitor&& v) {
  v("preset", o.preset);
  v("task", o.task);
  v("data", o.data);
  v("steps", o.steps);
  v("epochs", o.epochs);
  v("minutes", o.minutes);
  v("batch-size", o.batch_size);
  v("lr", o.learning_rate);
  v("weight-decay", o.weight_decay);
  v("warmup", o.warmup_steps);
  v("grad-clip", o.grad_clip);
  v("accumulate", o.accumulate);
  v("precision", o.precision);
  v("seed", o.seed);
  v("eval-every", o.eval_every);
  v("eval-samples", o.eval_samples);
  v("checkpoint-every", o.checkpoint_every);
  v("keep-checkpoints", o.keep_checkpoints);
  v("stop-after", o.stop_after);
  v("max-bad", o.max_bad);
  v("tokenizer", o.tokenizer);
  v("vocab-size", o.vocab_size);
  v("init-from", o.init_from);
  v("init-audio-from", o.init_audio_from);
  v("freeze-towers", o.freeze_towers);
  v("max-image-pixels", o.max_image_pixels);
  v("hard-negatives", o.hard_negatives);
  v("ctc-weight", o.ctc_weight);
  v("modalities", o.modalities);
  v("fusion", o.fusion);
  v("modality-dropout", o.modality_dropout);
  v("unimodal-loss", o.unimodal_loss);
  v("label-field", o.label_field);
  v("dim", o.dim);
  v("connector", o.connector);
  v("blind", o.blind);
  v("caption-weight", o.caption_weight);
  v("autoencoder-steps", o.autoencoder_steps);
  v("autoencoder-lr", o.autoencoder_lr);
  v("noise-schedule", o.noise_schedule);
  v("prediction", o.prediction);
  v("snr-gamma", o.snr_gamma);
  v("ema-decay", o.ema_decay);
  v("train-text-encoder", o.train_text_encoder);
}

template <class T>
json value_json(const T& value) {
  return value;
}
json value_json(const fs::path& value) { return value.string(); }
json value_json(const std::vector<std::string>& value) { return value.empty() ? json() : json(value); }
template <class T>
json value_json(const std::optional<T>& value) {
  return value ? value_json(*value) : json();
}

template <class T>
void read_value(const json& j, T& out, const char* name) {
  try {
    out = j.get<T>();
  } catch (const json::exception&) {
    throw UsageError(str_cat("--", name, ": ", j.dump(), " is not a valid value"));
  }
}
void read_value(const json& j, fs::path& out, const char* name) {
  std::string s;
  read_value(j, s, name);
  out = s;
}
void read_value(const json& j, std::vector<std::string>& out, const char* name) {
  if (j.is_null()) return out.clear();
  try {
    out = j.get<std::vector<std::string>>();
  } catch (const json::exception&) {
    throw UsageError(str_cat("--", name, ": ", j.dump(), " is not a list of names"));
  }
}
template <class T>
void read_value(const json& j, std::optional<T>& out, const char* name) {
  if (j.is_null()) return out.reset();
  T value{};
  read_value(j, value, name);
  out = value;
}

}  // namespace

json to_json(const TrainOptions& options) {
  TrainOptions o = options;
  json out = json::object();
  visit(o, [&](const char* name, const auto& value) {
    json j = value_json(value);
    if (!j.is_null()) out[name] = j;
  });
  return out;
}

TrainOptions train_options_from_json(const json& j, TrainOptions base) {
  check(j.is_object(), "training options: expected a JSON object, got ", j.type_name());
  std::set<std::string> known;
  visit(base, [&](const char* name, auto& value) {
    known.insert(name);
    if (j.contains(name)) read_value(j[name], value, name);
  });
  for (const auto& [key, value] : j.items())
    check(known.count(key), "training options: unknown option \"", key, "\"");
  return base;
}

std::set<std::string> given_flags(const TrainOptions& o) {
  std::set<std::string> given = o.given;
  const json now = to_json(o), defaults = to_json(TrainOptions{});
  for (const auto& [key, value] : now.items())
    if (!defaults.contains(key) || defaults[key] != value) given.insert(key);
  return given;
}

const std::set<std::string>& family_flags() {
  static const std::set<std::string> flags = {
      "tokenizer",  "vocab-size", "init-from", "init-audio-from",  "freeze-towers",      "max-image-pixels",
      "ctc-weight", "modalities", "fusion",    "modality-dropout", "unimodal-loss",      "label-field",
      "dim",        "connector",  "blind",     "caption-weight",   "autoencoder-steps",  "autoencoder-lr",
      "prediction", "snr-gamma",  "ema-decay", "noise-schedule",   "train-text-encoder", "hard-negatives"};
  return flags;
}

void validate(const TrainOptions& o) {
  auto usage = [](bool ok, const auto&... message) {
    if (!ok) throw UsageError(str_cat(message...));
  };
  auto finite = [](double x) { return std::isfinite(x); };
  usage(!o.out.empty(), "--out is required: the run directory to write into");
  usage(o.loader_threads >= -1 && o.loader_threads <= 64, "--loader-threads ", o.loader_threads,
        ": must be 0 to 64");
  usage(o.steps >= 0, "--steps ", o.steps, ": must be a positive number of optimizer steps");
  usage(finite(o.epochs) && o.epochs >= 0, "--epochs ", o.epochs, ": must be a positive number of passes");
  usage(finite(o.minutes) && o.minutes >= 0, "--minutes ", o.minutes, ": must be a positive duration");
  // A length given as 0 would silently become the default length.
  const std::set<std::string> given = given_flags(o);
  usage(!given.count("steps") || o.steps > 0, "--steps must be greater than 0");
  usage(!given.count("epochs") || o.epochs > 0, "--epochs must be greater than 0");
  usage(!given.count("minutes") || o.minutes > 0, "--minutes must be greater than 0");
  usage((o.steps > 0) + (o.epochs > 0) + (o.minutes > 0) <= 1,
        "give at most one of --steps, --epochs, --minutes");
  usage(o.steps <= 1'000'000'000, "--steps ", o.steps, ": more than 10^9 steps is not a run that ends");
  usage(o.epochs <= 1e6, "--epochs ", o.epochs, ": more than 10^6 passes is not a run that ends");
  usage(o.minutes <= 60 * 24 * 365, "--minutes ", o.minutes, ": more than a year");
  if (o.batch_size)
    usage(*o.batch_size >= 1 && *o.batch_size <= 1'000'000, "--batch-size ", *o.batch_size,
          ": must be between 1 and 10^6");
  if (o.learning_rate)
    usage(finite(*o.learning_rate) && *o.learning_rate > 0 && *o.learning_rate < 10, "--lr ",
          *o.learning_rate, ": must be a positive number below 10");
  if (o.weight_decay)
    usage(finite(*o.weight_decay) && *o.weight_decay >= 0 && *o.weight_decay < 10, "--weight-decay ",
          *o.weight_decay, ": must be in [0, 10)");
  usage(o.warmup_steps >= 0, "--warmup ", o.warmup_steps, ": must be >= 0");
  usage(finite(o.grad_clip) && o.grad_clip >= 0, "--grad-clip ", o.grad_clip,
        ": must be >= 0 (0: no clipping)");
  usage(o.accumulate >= 1 && o.accumulate <= 4096, "--accumulate ", o.accumulate,
        ": must be between 1 and 4096");
  if (o.batch_size)
    usage(*o.batch_size % o.accumulate == 0, "--batch-size ", *o.batch_size,
          " is not a multiple of --accumulate ", o.accumulate,
          ": each micro-batch holds batch-size / accumulate examples");
  if (o.precision)
    usage(
        *o.precision == "fp32" || *o.precision == "bf16" || *o.precision == "fp64" || *o.precision == "auto",
        "--precision ", *o.precision, ": expected fp32, bf16, fp64 or auto");
  usage(o.eval_every >= 0, "--eval-every ", o.eval_every, ": must be >= 0 (0: about five times a run)");
  if (o.eval_samples) usage(*o.eval_samples >= 1, "--eval-samples ", *o.eval_samples, ": must be >= 1");
  usage(o.checkpoint_every >= 0, "--checkpoint-every ", o.checkpoint_every, ": must be >= 0");
  usage(o.max_bad >= 0, "--max-bad must be 0 or more");
  usage(o.keep_checkpoints >= 1 && o.keep_checkpoints <= 1000, "--keep-checkpoints ", o.keep_checkpoints,
        ": must be between 1 and 1000");
  usage(o.stop_after >= 0, "--stop-after ", o.stop_after, ": must be >= 0");
  if (o.vocab_size)
    usage(*o.vocab_size >= 260 && *o.vocab_size <= 1'000'000, "--vocab-size ", *o.vocab_size,
          ": must be between 260 and 10^6 (the 256 bytes, the special tokens and the merges)");
  usage(o.max_image_pixels >= 0, "--max-image-pixels ", o.max_image_pixels, ": must be >= 0");
  if (o.ctc_weight)
    usage(finite(*o.ctc_weight) && *o.ctc_weight >= 0 && *o.ctc_weight < 1, "--ctc-weight ", *o.ctc_weight,
          ": must be in [0, 1)");
  if (o.modality_dropout)
    usage(finite(*o.modality_dropout) && *o.modality_dropout >= 0 && *o.modality_dropout < 1,
          "--modality-dropout ", *o.modality_dropout, ": must be in [0, 1)");
  if (o.unimodal_loss)
    usage(finite(*o.unimodal_loss) && *o.unimodal_loss >= 0 && *o.unimodal_loss <= 100, "--unimodal-loss ",
          *o.unimodal_loss, ": must be in [0, 100]");
  if (o.dim)
    usage(*o.dim >= 4 && *o.dim <= 8192 && *o.dim % 4 == 0, "--dim ", *o.dim,
          ": must be a multiple of 4 in [4, 8192]");
  if (o.label_field) usage(!o.label_field->empty(), "--label-field must not be empty");
  if (o.connector)
    usage(*o.connector == "cross-attention" || *o.connector == "prefix" || *o.connector == "queries",
          "--connector ", *o.connector, ": expected cross-attention, prefix or queries");
  if (o.caption_weight)
    usage(finite(*o.caption_weight) && *o.caption_weight >= 0 && *o.caption_weight <= 100,
          "--caption-weight ", *o.caption_weight, ": must be in [0, 100]");
  if (o.autoencoder_steps)
    usage(*o.autoencoder_steps >= 1 && *o.autoencoder_steps <= 100'000'000, "--autoencoder-steps ",
          *o.autoencoder_steps, ": must be between 1 and 10^8");
  if (o.autoencoder_lr)
    usage(finite(*o.autoencoder_lr) && *o.autoencoder_lr > 0 && *o.autoencoder_lr < 10, "--autoencoder-lr ",
          *o.autoencoder_lr, ": must be a positive number below 10");
  if (o.noise_schedule)
    usage(*o.noise_schedule == "linear" || *o.noise_schedule == "scaled-linear" ||
              *o.noise_schedule == "cosine",
          "--noise-schedule ", *o.noise_schedule, ": expected linear, scaled-linear or cosine");
  if (o.prediction)
    usage(*o.prediction == "epsilon" || *o.prediction == "v", "--prediction ", *o.prediction,
          ": expected epsilon or v");
  if (o.snr_gamma)
    usage(finite(*o.snr_gamma) && *o.snr_gamma >= 0 && *o.snr_gamma <= 1000, "--snr-gamma ", *o.snr_gamma,
          ": must be in [0, 1000] (0: no weighting)");
  if (o.ema_decay)
    usage(finite(*o.ema_decay) && *o.ema_decay >= 0 && *o.ema_decay < 1, "--ema-decay ", *o.ema_decay,
          ": must be in [0, 1) (0: no averaging)");
}

void validate_workers(const TrainOptions& o, int64_t workers, const std::string& workers_flag) {
  if (o.batch_size && *o.batch_size % (workers * o.accumulate) != 0)
    throw UsageError(str_cat("--batch-size ", *o.batch_size, " is not a multiple of ", workers_flag,
                             " x --accumulate ", o.accumulate,
                             ": every worker takes the same share of each micro-batch"));
}

}  // namespace mmlearn
