// The composed-retrieval model's row in the registry (models/composed.h): a combiner trained on edit triplets
// over a frozen CLIP (`train --task composed --init-from CLIP`), evaluated against the arithmetic baseline,
// and opened by search, embed and eval like any model that embeds images and texts.
#include <cmath>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/heads/contrastive.h"
#include "mmlearn/models/clip_import.h"
#include "mmlearn/models/composed.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/models/weight_files.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// R@1/5/10 of the arithmetic baseline and of the combiner: query i's answer is target i, among all targets.
json composed_metrics(Combiner& combiner, const EditFeatures& f) {
  torch::NoGradGuard no_grad;
  combiner->eval();
  std::vector<std::vector<int64_t>> relevant(static_cast<size_t>(f.size()));
  for (int64_t i = 0; i < f.size(); ++i) relevant[static_cast<size_t>(i)] = {i};
  auto recall = [&](const torch::Tensor& queries) {
    return recall_at_k(torch::matmul(queries, f.targets.t()), relevant, {1, 5, 10});
  };
  return {{"arithmetic", recall(arithmetic_query(f.images, f.texts))},
          {"learned", recall(combiner->forward(f.images, f.texts))},
          {"n", f.size()}};
}

std::string composed_summary(const json& m) {
  return str_cat("R@10 learned ", m["learned"]["R@10"].get<double>(), ", arithmetic ",
                 m["arithmetic"]["R@10"].get<double>());
}

void log_skipped_triplets(const EditFeatures& f, const fs::path& manifest) {
  if (f.skipped.empty()) return;
  log_warn(f.skipped.size(), " triplets in ", manifest.string(), " skipped, e.g.:");
  for (size_t i = 0; i < std::min<size_t>(f.skipped.size(), 5); ++i) log_warn("  ", f.skipped[i]);
}

// What a run trains: the checkpoint's combiner, a composed model's (trained further), or a new one over the
// CLIP model --init-from names.
ComposedBundle composed_to_train(const TrainOptions& o, const fs::path& resume_from) {
  if (!resume_from.empty()) return load_composed(resume_from);
  if (o.init_from.empty())
    throw UsageError(
        "--task composed needs --init-from: the CLIP model whose embeddings the combiner composes");
  if (config_model_type(o.init_from) == "composed") return load_composed(o.init_from);
  ClipBundle clip = open_clip(o.init_from);
  const int64_t dim = clip.model->config.embed_dim;
  const int64_t projection = o.dim.value_or(4 * dim);
  return {std::move(clip),
          Combiner(CombinerConfig{.dim = dim, .projection_dim = projection, .hidden_dim = 2 * projection})};
}

class ComposedTask : public TrainTask {
 public:
  ComposedTask(const TrainOptions& o, const fs::path& resume_from, const data::Manifest& train)
      : m_(composed_to_train(o, resume_from)) {
    // The CLIP stays as it is (CLIP4Cir's second stage): its embeddings are computed once, here.
    for (auto& p : m_.clip.model->parameters()) p.requires_grad_(false);
    log_info("embedding ", train.records.size(), " training triplets with the CLIP model");
    train_ = embed_edit_triplets(m_.clip, train);
    log_skipped_triplets(train_, train.path);
    check(train_.size() > 0, train.path.string(),
          ": no usable edit triplets (records with \"image\", \"text\" and "
          "\"target\": mmlearn data shapes --task edit writes them)");
    if (fs::is_directory(o.data) && fs::exists(o.data / "test.jsonl")) {
      test_ = embed_edit_triplets(m_.clip, data::read_manifest(o.data / "test.jsonl"),
                                  o.eval_samples.value_or(1000));
      log_skipped_triplets(test_, o.data / "test.jsonl");
    }
  }

  torch::nn::Module& trained() override { return *m_.combiner; }
  torch::nn::Module& model() override { return *m_.combiner; }
  int64_t train_size() const override { return train_.size(); }
  data::SkipLog skipped() const override {
    return {static_cast<int64_t>(train_.skipped.size()), train_.skipped};
  }

  std::any prepare(const std::vector<int64_t>& indices) const override {
    const auto rows = torch::tensor(indices, torch::kLong);
    return std::vector<torch::Tensor>{train_.images.index_select(0, rows), train_.texts.index_select(0, rows),
                                      train_.targets.index_select(0, rows)};
  }
  StepLoss loss(std::any& batch, const StepContext& step) override {
    check(step.group >= 2,
          "contrastive training needs at least 2 examples a micro-batch (raise --batch-size)");
    const auto& b = std::any_cast<std::vector<torch::Tensor>&>(batch);
    const double p = m_.combiner->config.dropout;
    // Masks drawn for the whole micro-batch and cut to this process's rows: --nproc does not change them.
    Dropout dropout = [&](const torch::Tensor& x) {
      if (p == 0) return x;
      auto keep = torch::rand({step.group, x.size(1)}, step.generator).narrow(0, step.offset, x.size(0)) >= p;
      return x * keep.to(x.device(), x.scalar_type()) / (1 - p);
    };
    torch::Tensor query;
    {
      AutocastGuard autocast(step.precision);
      query = m_.combiner->forward(step.place(b[0]), step.place(b[1]), dropout);
    }
    // CLIP4Cir's fixed temperature (logits x 100), over every target of the batch.
    const auto logit_scale = torch::full({}, std::log(kMaxLogitScale), query.options());
    return {clip_loss(query, step.place(b[2]), logit_scale, step.offset, step.parallel), {}};
  }

  json evaluate() override {
    if (test_.size() == 0) return nullptr;
    return composed_metrics(m_.combiner, test_);
  }
  std::string summarize(const json& m) const override { return composed_summary(m); }
  void save_model(const fs::path& dir) override { save_composed(dir, m_); }

 private:
  ComposedBundle m_;
  EditFeatures train_, test_;
};

class ComposedModel : public Model {
 public:
  ComposedModel(const ModelFamily& family, ComposedBundle m) : Model(family), m_(std::move(m)) {}

  // The CLIP's own embeddings: an index built with the CLIP model answers this model's queries.
  std::vector<std::string> embeds() const override { return {"image", "text"}; }
  torch::Tensor embed(const std::string& modality, const std::vector<std::string>& inputs,
                      Precision precision) override {
    if (modality != "image" && modality != "text") Model::embed(modality, inputs, precision);
    return embed_clip_inputs(m_.clip, modality, inputs, precision);
  }
  torch::Tensor compose(const std::vector<std::string>& images, const std::vector<std::string>& texts,
                        Precision precision) override {
    torch::NoGradGuard no_grad;
    return m_.combiner->forward(embed("image", images, precision), embed("text", texts, precision));
  }

  std::set<std::string> eval_flags() const override { return {"limit", "strict"}; }
  json evaluate(const EvalRequest& r) override {
    const fs::path manifest = data::find_manifest(r.data, "test");
    const EditFeatures f =
        embed_edit_triplets(m_.clip, data::read_manifest(manifest), r.limit, r.strict, r.precision);
    log_skipped_triplets(f, manifest);
    check(f.size() > 0, manifest.string(), ": no usable edit triplets (image, text and target)");
    json metrics = composed_metrics(m_.combiner, f);
    metrics["records"] = f.size();
    metrics["skipped_records"] = f.skipped.size();
    return metrics;
  }
  std::string format_metrics(const json& m) const override {
    std::string out =
        str_cat("triplets: ", m["records"].get<int64_t>(), " (", m["skipped_records"].get<int64_t>(),
                " skipped); the gallery is their target images\n");
    for (const char* method : {"arithmetic", "learned"}) {
      char line[160];
      std::snprintf(line, sizeof line, "%-10s  R@1 %5.1f%%  R@5 %5.1f%%  R@10 %5.1f%%\n", method,
                    100 * m[method]["R@1"].get<double>(), 100 * m[method]["R@5"].get<double>(),
                    100 * m[method]["R@10"].get<double>());
      out += line;
    }
    return out;
  }

 protected:
  void* bundle_of(const std::type_info& type) override {
    return type == typeid(ClipBundle) ? &m_.clip : nullptr;
  }

 private:
  ComposedBundle m_;
};

}  // namespace

ModelFamily composed_family() {
  ModelFamily f;
  f.model_type = "composed";
  f.task = "composed";
  f.summary = "composed image retrieval: image + text change → image (CLIP4Cir combiner over a CLIP)";
  f.presets = {"combiner"};
  f.default_preset = "combiner";
  f.describe = [](const std::string& name) {
    // Its size follows the CLIP it composes; described here over a 512-wide embedding (ViT-B/32's).
    const CombinerConfig c{.dim = 512, .projection_dim = 2048, .hidden_dim = 4096};
    int64_t parameters = 0;
    for (const auto& p : Combiner(c)->parameters()) parameters += p.numel();
    return PresetInfo{name, parameters,
                      "projections 4 x E, MLP 8 x E, learned blend of image and text (E = the CLIP's "
                      "embedding width; 512 counted); --init-from a CLIP, --dim the projection width",
                      to_json(c)};
  };
  f.holds = [](const fs::path& path) { return config_model_type(path) == "composed"; };
  f.open = [](const fs::path& path, const OpenOptions&) -> std::unique_ptr<Model> {
    return std::make_unique<ComposedModel>(family_of_type("composed"), load_composed(path));
  };
  f.train_flags = {"init-from", "dim"};
  f.train_defaults = {{"batch-size", 256},   {"lr", 5e-4},           {"weight-decay", 0.01},
                      {"precision", "fp32"}, {"eval-samples", 1000}, {"epochs", 20}};
  f.make_train_task = [](const TrainOptions& o, const fs::path& resume_from,
                         data::Manifest train) -> std::unique_ptr<TrainTask> {
    return std::make_unique<ComposedTask>(o, resume_from, train);
  };
  return f;
}

}  // namespace mmlearn
