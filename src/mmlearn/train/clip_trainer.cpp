#include "mmlearn/train/clip_trainer.h"

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <chrono>
#include <fstream>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/clip_import.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/train/metrics_log.h"
#include "mmlearn/train/schedule.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

text::BpeTokenizer learn_tokenizer(const fs::path& manifest_path, int64_t vocab_size) {
  data::Manifest manifest = data::read_manifest(manifest_path);
  std::vector<std::string> texts;
  for (const auto& r : manifest.records)
    if (r.json.contains("text") && r.json["text"].is_string())
      texts.push_back(r.json["text"].get<std::string>());
  check(!texts.empty(), manifest_path.string(), ": no record has a \"text\" field to learn a tokenizer from");
  std::unique_ptr<Progress> bar;
  auto tokenizer = text::train_bpe(texts, {.vocab_size = vocab_size}, [&](int64_t done, int64_t total) {
    if (!bar) bar = std::make_unique<Progress>("tokenizer", total, "merge");
    bar->update(done);
  });
  return tokenizer;
}

namespace {

void log_skipped(const data::ImageTextDataset& ds) {
  if (!ds.skipped) return;
  log_warn(ds.skipped, " of ", ds.skipped + ds.size(), " records in ", ds.manifest.path.string(),
           " skipped (bad or missing image or text), e.g.:");
  for (const auto& reason : ds.skip_reasons) log_warn("  ", reason);
}

// Keep only metric lines up to `step` (a resumed run rewrites what came after its checkpoint).
void truncate_metrics(const fs::path& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("step", int64_t{0}) <= step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

void save_checkpoint(const fs::path& dir, const Clip& model, torch::optim::Optimizer& optimizer,
                     const json& state) {
  fs::create_directories(dir);
  save_parameters(*model, dir / "model.safetensors");
  fs::path temp = dir / "optimizer.pt.tmp";
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  archive.save_to(temp.string());
  fs::rename(temp, dir / "optimizer.pt");
  write_file_atomic(dir / "state.json", state.dump(2) + "\n");  // last: marks the checkpoint complete
}

}  // namespace

std::unique_ptr<torch::optim::AdamW> make_contrastive_optimizer(torch::nn::Module& model,
                                                                double learning_rate, double weight_decay) {
  // Weight decay applies to matrices only: not to gains, biases, position/class embeddings or the temperature
  // (as open_clip does).
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : model.named_parameters()) {
    if (!p.value().requires_grad()) continue;  // frozen
    const bool decays = p.value().dim() >= 2 && p.key().find("embedding") == std::string::npos;
    (decays ? decay : no_decay).push_back(p.value());
  }
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(learning_rate).betas({0.9, 0.98}).eps(1e-6).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(learning_rate));
}

double clip_train_step(Clip& model, torch::optim::Optimizer& optimizer, const torch::Tensor& images_u8,
                       const torch::Tensor& ids, double grad_clip, Precision precision) {
  torch::Tensor image_embeds, text_embeds;
  {
    AutocastGuard autocast(precision);
    image_embeds = model->encode_image(model->normalize_pixels(images_u8));
    text_embeds = model->encode_text(ids);
  }
  auto loss = clip_loss(image_embeds, text_embeds, model->logit_scale);
  optimizer.zero_grad();
  loss.backward();
  torch::nn::utils::clip_grad_norm_(model->parameters(), grad_clip);
  optimizer.step();
  torch::NoGradGuard no_grad;  // CLIP clamps the learned temperature at 100
  model->logit_scale.clamp_(0, std::log(kMaxLogitScale));
  return loss.item<double>();
}

ClipTrainResult train_clip(const ClipTrainOptions& o) {
  const auto start = Clock::now();
  check(!o.out.empty(), "--out is required: the run directory to write the model into");
  check(o.batch_size >= 2, "--batch-size must be at least 2 for contrastive training");
  check((o.steps > 0) + (o.epochs > 0) + (o.minutes > 0) <= 1,
        "give at most one of --steps, --epochs, --minutes");
  const Precision precision = parse_precision(o.precision);
  const fs::path train_path = data::find_manifest(o.data, "train");
  const fs::path test_path =
      fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl") ? o.data / "test.jsonl" : fs::path();
  const fs::path classes_path =
      fs::is_directory(o.data) ? o.data / "classes.json" : train_path.parent_path() / "classes.json";
  const fs::path checkpoint_dir = o.out / "checkpoint", metrics_path = o.out / "metrics.jsonl";

  // The model's description and tokenizer go into the run directory first, so that a resumed run reads them
  // back.
  json resume_state;
  if (o.resume) {
    check(fs::exists(checkpoint_dir / "state.json"), o.out.string(),
          " holds no checkpoint to resume from (expected checkpoint/state.json)");
    resume_state = read_json_file(checkpoint_dir / "state.json");
    // The batches a resumed run sees are a function of seed and batch size: they must be the run's own.
    check(resume_state.value("seed", o.seed) == o.seed &&
              resume_state.value("batch_size", o.batch_size) == o.batch_size,
          o.out.string(), " was trained with --seed ", resume_state.value("seed", o.seed), " --batch-size ",
          resume_state.value("batch_size", o.batch_size), "; resume it with the same values");
  } else {
    check(!fs::exists(checkpoint_dir) && !fs::exists(o.out / "model.safetensors"), o.out.string(),
          " already holds a training run: pass --resume to continue it, or choose another --out");
  }
  check(o.init_from.empty() || o.tokenizer.empty(),
        "--tokenizer cannot be combined with --init-from: the pretrained model's tokenizer is used");
  check(!o.freeze_towers || !o.init_from.empty() || o.resume,
        "--freeze-towers needs --init-from (a pretrained model whose towers to keep)");
  std::optional<ClipBundle> pretrained;
  if (!o.resume && !o.init_from.empty()) pretrained = open_clip(o.init_from);
  ClipConfig config = o.resume     ? load_clip_config(o.out)
                      : pretrained ? pretrained->model->config
                                   : clip_preset(o.preset);
  const text::BpeTokenizer tokenizer = o.resume     ? text::BpeTokenizer::load(o.out)
                                       : pretrained ? pretrained->tokenizer
                                       : o.tokenizer.empty()
                                           ? learn_tokenizer(train_path, o.tokenizer_vocab_size)
                                           : text::BpeTokenizer::load(o.tokenizer);
  if (!o.resume && !pretrained) {
    config.text.vocab_size = tokenizer.vocab_size();
    config.text.eot_token_id = tokenizer.eot_id();
  }
  if (!o.resume) {
    fs::create_directories(o.out);
    write_file_atomic(o.out / "config.json", to_json(config).dump(2) + "\n");
    tokenizer.save(o.out);
    if (fs::exists(metrics_path)) fs::remove(metrics_path);
  }

  data::ImageTextOptions load_options{.image_size = config.vision.image_size,
                                      .context_length = config.text.context_length};
  load_options.decode.max_pixels = o.max_image_pixels;
  data::ImageTextDataset train = data::load_image_text(train_path, tokenizer, load_options);
  log_skipped(train);
  check(train.size() >= o.batch_size, train_path.string(), ": ", train.size(),
        " usable records, fewer than one batch of ", o.batch_size, " (lower --batch-size or add data)");
  data::ImageTextDataset test;
  if (!test_path.empty()) {
    test = data::load_image_text(test_path, tokenizer, load_options);
    log_skipped(test);
    if (test.size() > o.eval_samples) {
      test.images = test.images.slice(0, 0, o.eval_samples);
      test.ids = test.ids.slice(0, 0, o.eval_samples);
      test.texts.resize(o.eval_samples);
      test.manifest.records.resize(o.eval_samples);
    }
  }

  torch::manual_seed(o.seed);
  // A pretrained model is trained as opened (no second copy of its weights); otherwise CLIP's initialisation.
  Clip model = pretrained ? pretrained->model : Clip(config);
  // A linear probe: the towers keep their weights (and BatchNorm its statistics, see set_train_mode).
  auto is_head = [](const std::string& name) {
    return name == "visual.proj" || name == "text.text_projection" || name == "logit_scale" ||
           name.starts_with("visual.attnpool.c_proj.");
  };
  if (o.freeze_towers)
    for (auto& p : model->named_parameters())
      if (!is_head(p.key())) p.value().requires_grad_(false);
  auto set_train_mode = [&] {
    model->train();
    if (o.freeze_towers) {
      model->text->eval();
      if (model->resnet) model->resnet->eval();
    }
  };
  std::unique_ptr<torch::optim::AdamW> adamw =
      make_contrastive_optimizer(*model, o.learning_rate, o.weight_decay);
  torch::optim::AdamW& optimizer = *adamw;

  const int64_t steps_per_epoch = train.size() / o.batch_size;
  int64_t total_steps = o.steps > 0     ? o.steps
                        : o.epochs > 0  ? static_cast<int64_t>(std::ceil(o.epochs * steps_per_epoch))
                        : o.minutes > 0 ? 0  // decided after timing the first steps
                                        : 10 * steps_per_epoch;
  int64_t step = 0;
  if (o.resume) {
    step = resume_state.at("step").get<int64_t>();
    total_steps = resume_state.at("total_steps").get<int64_t>();
    load_parameters(*model, checkpoint_dir / "model.safetensors");
    torch::serialize::InputArchive archive;
    archive.load_from((checkpoint_dir / "optimizer.pt").string());
    optimizer.load(archive);
    truncate_metrics(metrics_path, step);
    log_info("resuming ", o.out.string(), " at step ", step, " of ", total_steps);
  }
  auto warmup = [&] { return o.warmup_steps > 0 ? o.warmup_steps : std::max<int64_t>(1, total_steps / 20); };
  auto eval_every = [&] { return o.eval_every > 0 ? o.eval_every : std::max<int64_t>(1, total_steps / 10); };

  auto state_json = [&] {
    return json{{"step", step}, {"total_steps", total_steps}, {"seed", o.seed}, {"batch_size", o.batch_size}};
  };
  auto evaluate = [&]() -> json {
    if (test.size() == 0) return nullptr;
    json metrics = evaluate_clip(model, tokenizer, test, classes_path);
    set_train_mode();
    append_metrics(metrics_path, {{"step", step}, {"eval", metrics}});
    return metrics;
  };

  ClipTrainResult result;
  result.skipped_records = train.skipped;
  set_train_mode();
  std::unique_ptr<Progress> bar;
  torch::Tensor order;
  int64_t order_epoch = -1;
  double loss_sum = 0;
  int64_t loss_count = 0;
  const auto train_start = Clock::now();
  const int64_t first_step = step;
  while (total_steps == 0 || step < total_steps) {
    // Each epoch's order is a function of (seed, epoch) alone, so a resumed run sees the same batches.
    const int64_t epoch = step / steps_per_epoch, position = step % steps_per_epoch;
    if (epoch != order_epoch) {
      order = torch::randperm(train.size(), at::detail::createCPUGenerator(o.seed * 1000003 + epoch),
                              torch::TensorOptions().dtype(torch::kLong));
      order_epoch = epoch;
    }
    auto index = order.slice(0, position * o.batch_size, (position + 1) * o.batch_size);
    const double lr = cosine_lr(step, std::max<int64_t>(total_steps, 1), warmup(), o.learning_rate);
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);

    const double loss_value = clip_train_step(model, optimizer, train.images.index_select(0, index),
                                              train.ids.index_select(0, index), o.grad_clip, precision);
    ++step;
    loss_sum += loss_value;
    ++loss_count;

    if (total_steps == 0) {  // --minutes: time a few steps, then fix the schedule's length
      const double elapsed = std::chrono::duration<double>(Clock::now() - train_start).count();
      if (step - first_step >= 5) {
        const double budget = o.minutes * 60 - std::chrono::duration<double>(train_start - start).count();
        total_steps =
            std::max<int64_t>(step + 1, static_cast<int64_t>(budget / (elapsed / (step - first_step))));
        log_info("--minutes ", o.minutes, ": ", total_steps, " steps at ", elapsed / (step - first_step),
                 " s/step");
      }
    }
    if (total_steps > 0 && !bar) {
      bar = std::make_unique<Progress>("train", total_steps, "step", first_step);
    }
    if (bar) bar->update(step, {{"loss", loss_value}, {"lr", lr}});
    if (step % 10 == 0 || step == total_steps) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - train_start).count();
      append_metrics(metrics_path, {{"step", step},
                                    {"epoch", double(step) / steps_per_epoch},
                                    {"loss", loss_sum / loss_count},
                                    {"lr", lr},
                                    {"logit_scale", model->logit_scale.exp().item<double>()},
                                    {"samples_per_s", (step - first_step) * o.batch_size / elapsed},
                                    {"seconds", elapsed}});
      loss_sum = 0;
      loss_count = 0;
    }
    if (total_steps > 0 && step % eval_every() == 0 && step != total_steps) evaluate();
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0 && step != total_steps)
      save_checkpoint(checkpoint_dir, model, optimizer, state_json());
    result.final_loss = loss_value;
    if (o.stop_after > 0 && step - first_step >= o.stop_after && step != total_steps) {
      save_checkpoint(checkpoint_dir, model, optimizer, state_json());
      if (bar) bar->finish();
      log_info("stopped after ", o.stop_after, " steps at step ", step, "; continue with --resume");
      result.steps = step;
      result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      return result;
    }
  }
  if (bar) bar->finish();

  result.final_eval = evaluate();
  save_checkpoint(checkpoint_dir, model, optimizer, state_json());
  save_clip(o.out, model, tokenizer);
  result.steps = step;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace mmlearn
