// Late fusion: each modality predicts on its own, and the predictions are combined. None of these can
// express an interaction the per-modality predictions do not already carry (stacking's learned combiner
// comes closest), which is what the fusion table in docs/fusion.md shows.
#include <torch/torch.h>

#include "mmlearn/fusion/methods.h"

namespace mmlearn::fusion {
namespace {

// late-mean      — the mean of the per-modality class distributions (Baltrušaitis et al., 2019).
// late-weighted  — a learned convex combination of them, renormalised over the modalities present.
// product-of-experts — their product, renormalised (Hinton, 2002); an absent expert is left out of the
//                  product, as in the multimodal VAE of Wu & Goodman, 2018.
// stacking       — a learned combiner over the per-modality log-probabilities (Wolpert, "Stacked
//                  Generalization", 1992); an absent modality's are a learned stand-in.
struct LateFusion : FusionImpl {
  explicit LateFusion(const FusionConfig& c) : FusionImpl(c) {
    for (const auto& m : c.modalities) {
      heads.push_back(register_module(
          "head_" + m, torch::nn::Sequential(torch::nn::Linear(c.dim, c.hidden), torch::nn::GELU(),
                                             torch::nn::Linear(c.hidden, c.n_outputs))));
    }
    const auto M = int64_t(c.modalities.size());
    if (c.method == "late-weighted") weights = register_parameter("weights", torch::zeros({M}));
    if (c.method == "stacking") {
      missing = register_module("missing", MissingVectors(c.modalities, c.n_outputs));
      combiner = register_module(
          "combiner", torch::nn::Sequential(torch::nn::Linear(M * c.n_outputs, c.hidden), torch::nn::GELU(),
                                            torch::nn::Linear(c.hidden, c.n_outputs)));
    }
    output_dim = c.n_outputs;
  }

  EncoderOutput fuse(const ModalityOutputs& inputs) override {
    const int64_t batch = batch_size(inputs);
    std::vector<torch::Tensor> logits, present;
    for (size_t i = 0; i < config.modalities.size(); ++i) {
      auto in = tokens_or_empty(inputs, config.modalities[i], batch, config.dim);
      logits.push_back(heads[i]->forward(in.pooled));
      present.push_back(presence(inputs, config.modalities[i], batch));
    }
    auto per_modality = torch::stack(logits, 1);  // [B, M, C]
    auto mask = torch::stack(present, 1);         // [B, M]
    auto log_p = torch::log_softmax(per_modality, -1);
    torch::Tensor fused;
    if (config.method == "product-of-experts") {
      fused = (log_p * mask.unsqueeze(-1).to(log_p.dtype())).sum(1);
    } else if (config.method == "stacking") {
      ModalityOutputs distributions;
      for (size_t i = 0; i < config.modalities.size(); ++i) {
        auto p = log_p.select(1, int64_t(i));
        distributions[config.modalities[i]] = {p.unsqueeze(1), mask.select(1, int64_t(i)).unsqueeze(1), p};
      }
      fused = combiner->forward(missing->concat(distributions, config.modalities, batch));
    } else {  // a mixture of the present modalities' distributions, equal or learned weights
      auto w = config.method == "late-weighted" ? weights.unsqueeze(0).expand({batch, -1})
                                                : torch::zeros(mask.sizes(), log_p.options());
      auto log_w = torch::log_softmax(w.masked_fill(mask.logical_not(), -INFINITY), 1);  // [B, M]
      fused = torch::logsumexp(log_p + log_w.unsqueeze(-1), 1);  // absent: log weight -inf
    }
    return {per_modality, mask, fused};
  }

  std::vector<torch::nn::Sequential> heads;
  torch::Tensor weights;
  MissingVectors missing{nullptr};
  torch::nn::Sequential combiner{nullptr};
};

}  // namespace

std::shared_ptr<FusionImpl> make_late(const FusionConfig& c) { return std::make_shared<LateFusion>(c); }

}  // namespace mmlearn::fusion
