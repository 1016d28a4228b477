// Every fusion method: output shapes, masking (absent inputs cannot change the output), gradient flow, and
// learning a toy cross-modal interaction that no single modality shows.
#include <torch/torch.h>

#include "../test_util.h"
#include "mmlearn/fusion/fusion.h"

namespace mmlearn {
namespace {

constexpr int64_t kDim = 16;
const std::vector<std::string> kModalities = {"image", "text", "audio"};

FusionConfig config_for(const std::string& method, std::vector<std::string> modalities = kModalities) {
  return {.method = method,
          .modalities = std::move(modalities),
          .dim = kDim,
          .hidden = 16,
          .n_outputs = 3,
          .heads = 2,
          .layers = 1,
          .tensor_dim = 4,
          .rank = 3,
          .bottleneck_tokens = 2};
}

// Random inputs; modality i has 2 + i tokens, the last one padding in every other example.
ModalityOutputs random_inputs(int64_t batch, const std::vector<std::string>& modalities) {
  ModalityOutputs inputs;
  for (size_t i = 0; i < modalities.size(); ++i) {
    const int64_t n = 2 + int64_t(i);
    auto mask = torch::ones({batch, n}, torch::kBool);
    mask.index_put_({torch::indexing::Slice(0, torch::indexing::None, 2), n - 1}, false);
    inputs[modalities[i]] = {torch::randn({batch, n, kDim}), mask, torch::randn({batch, kDim})};
  }
  return inputs;
}

class EveryFusion : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryFusion, ShapesFollowTheContract) {
  torch::manual_seed(0);
  auto fusion = make_fusion(config_for(GetParam()));
  auto out = fusion->forward(random_inputs(5, kModalities));
  ASSERT_EQ(out.pooled.sizes(), (std::vector<int64_t>{5, fusion->output_dim}));
  EXPECT_EQ(out.tokens.dim(), 3);
  EXPECT_EQ(out.tokens.size(0), 5);
  EXPECT_EQ(out.mask.sizes(), out.tokens.sizes().slice(0, 2));
  EXPECT_TRUE(torch::isfinite(out.pooled).all().item<bool>());
  if (is_late_fusion(GetParam())) {
    EXPECT_EQ(fusion->output_dim, 3);                                // the classes
    EXPECT_EQ(out.tokens.sizes(), (std::vector<int64_t>{5, 3, 3}));  // each modality's own logits
  }
}

TEST_P(EveryFusion, AbsentInputsAreMaskedNotRead) {
  torch::manual_seed(1);
  auto fusion = make_fusion(config_for(GetParam()));
  fusion->eval();
  auto inputs = random_inputs(4, kModalities);
  inputs["text"].mask[0].fill_(false);  // example 0 has no text
  const auto before = fusion->forward(inputs).pooled;

  auto changed = inputs;
  changed["text"].tokens = inputs["text"].tokens.clone();
  changed["text"].pooled = inputs["text"].pooled.clone();
  changed["text"].tokens[0].fill_(std::numeric_limits<float>::quiet_NaN());  // absent: any content at all
  changed["text"].pooled[0].fill_(1e6);
  changed["text"].tokens[1].add_(torch::randn({3, kDim}));  // present: must matter
  changed["text"].pooled[1].add_(torch::randn({kDim}));
  const auto after = fusion->forward(changed).pooled;
  EXPECT_TRUE(torch::allclose(before[0], after[0], 1e-5, 1e-6)) << GetParam();
  EXPECT_GT((before[1] - after[1]).abs().max().item<double>(), 1e-4) << GetParam();

  // Padding tokens are not read either: example 0's image padding token changes nothing.
  auto padded = inputs;
  padded["image"].tokens = inputs["image"].tokens.clone();
  padded["image"].tokens[0][1].fill_(42.0);
  EXPECT_TRUE(torch::allclose(before[0], fusion->forward(padded).pooled[0], 1e-5, 1e-6)) << GetParam();

  // A modality absent from the map is the same as one absent from every example.
  auto without = inputs;
  without.erase("audio");
  auto masked = inputs;
  masked["audio"].mask = torch::zeros_like(inputs["audio"].mask);
  EXPECT_TRUE(torch::allclose(fusion->forward(without).pooled, fusion->forward(masked).pooled, 1e-5, 1e-6))
      << GetParam();
}

TEST_P(EveryFusion, GradientsReachEveryPresentInputAndNoAbsentOne) {
  torch::manual_seed(2);
  auto fusion = make_fusion(config_for(GetParam()));
  {
    // Gates that start at zero (cross-attention, film, bottleneck) block the gradient to what is behind them
    // until training opens them; open them here to see the whole path.
    torch::NoGradGuard no_grad;
    for (auto& p : fusion->named_parameters())
      if (p.key().find("gate_") != std::string::npos) p.value().fill_(0.5);
  }
  auto inputs = random_inputs(4, kModalities);
  inputs["audio"].mask[2].fill_(false);
  for (auto& [m, out] : inputs) {
    out.tokens.requires_grad_(true);
    out.pooled.requires_grad_(true);
  }
  fusion->forward(inputs).pooled.pow(2).sum().backward();
  for (const auto& [m, out] : inputs) {
    double total = 0;
    for (const auto& t : {out.tokens, out.pooled})
      if (t.grad().defined()) total += t.grad().abs().sum().item<double>();
    EXPECT_GT(total, 0) << GetParam() << ": no gradient reaches " << m;
  }
  const auto& audio = inputs["audio"];
  for (const auto& t : {audio.tokens, audio.pooled})
    if (t.grad().defined()) EXPECT_EQ(t.grad()[2].abs().sum().item<double>(), 0) << GetParam();
  int64_t with_grad = 0, total = 0;
  for (const auto& p : fusion->parameters()) {
    ++total;
    with_grad += p.grad().defined() && p.grad().abs().sum().item<double>() > 0;
  }
  // The stand-ins for absent modalities get gradient only from examples that lack one.
  EXPECT_GE(with_grad, total - int64_t(kModalities.size())) << GetParam();
}

// Two modalities each carry one bit in their tokens (plus noise); the label needs both. XOR cannot be
// represented by combining per-modality evidence, OR can: late fusions that combine fixed-form evidence learn
// OR, every other method learns XOR. Each modality alone reaches 50 % on XOR and 75 % on OR.
double train_toy(const std::string& method, bool exclusive_or, int64_t steps = 200) {
  torch::manual_seed(3);
  const std::vector<std::string> modalities = {"a", "b"};
  auto fusion = make_fusion(config_for(method, modalities));
  const bool late = is_late_fusion(method);
  torch::nn::Sequential head(torch::nn::Linear(fusion->output_dim, 32), torch::nn::GELU(),
                             torch::nn::Linear(32, 3));
  std::vector<torch::Tensor> parameters = fusion->parameters();
  if (!late)
    for (const auto& p : head->parameters()) parameters.push_back(p);
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(3e-3));
  const auto direction = torch::randn({2, kDim});
  auto sample = [&](int64_t batch) {
    auto bits = torch::randint(0, 2, {batch, 2});
    ModalityOutputs inputs;
    for (int64_t m = 0; m < 2; ++m) {
      auto sign = (bits.select(1, m) * 2 - 1).to(torch::kFloat).view({batch, 1, 1});
      auto tokens = sign * direction[m].view({1, 1, kDim}) + 0.3 * torch::randn({batch, 3, kDim});
      inputs[modalities[size_t(m)]] = {tokens, torch::ones({batch, 3}, torch::kBool), tokens.mean(1)};
    }
    auto label = exclusive_or ? bits.select(1, 0).bitwise_xor(bits.select(1, 1))
                              : bits.select(1, 0).bitwise_or(bits.select(1, 1));
    return std::make_pair(inputs, label);
  };
  auto logits_of = [&](const ModalityOutputs& inputs) {
    auto fused = fusion->forward(inputs).pooled;
    return late ? fused : head->forward(fused);
  };
  for (int64_t step = 0; step < steps; ++step) {
    auto [inputs, label] = sample(64);
    auto loss = torch::nn::functional::cross_entropy(logits_of(inputs), label);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  torch::NoGradGuard no_grad;
  fusion->eval();
  auto [inputs, label] = sample(512);
  return logits_of(inputs).argmax(1).eq(label).to(torch::kFloat).mean().item<double>();
}

TEST_P(EveryFusion, LearnsAToyInteraction) {
  const std::string method = GetParam();
  const bool additive_only = is_late_fusion(method) && method != "stacking";
  EXPECT_GE(train_toy(method, /*exclusive_or=*/!additive_only), 0.97) << method;
}

TEST(LateFusion, AddingEvidenceCannotExpressExclusiveOr) {
  for (const std::string method : {"late-mean", "late-weighted", "product-of-experts"})
    EXPECT_LE(train_toy(method, /*exclusive_or=*/true), 0.8) << method;
}

INSTANTIATE_TEST_SUITE_P(Methods, EveryFusion, ::testing::ValuesIn(fusion_methods()), [](const auto& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

TEST(Fusion, NamesAndBadInputGiveClearErrors) {
  EXPECT_EQ(canonical_fusion_method("late"), "late-mean");
  EXPECT_EQ(fusion_methods().size(), 12u);
  EXPECT_NE(test::error_of([] { make_fusion(config_for("average")); }).find("unknown fusion \"average\""),
            std::string::npos);
  EXPECT_NE(test::error_of([] { make_fusion(config_for("concat", {})); }).find("no modalities"),
            std::string::npos);
  EXPECT_NE(test::error_of([] {
              make_fusion(config_for("concat", {"text", "text"}));
            }).find("twice"),
            std::string::npos);
  auto fusion = make_fusion(config_for("concat", {"image", "text"}));
  auto inputs = random_inputs(3, {"image", "text", "audio"});
  EXPECT_NE(
      test::error_of([&] { fusion->forward(inputs); }).find("modality \"audio\" is not one it was built for"),
      std::string::npos);
  inputs.erase("audio");
  inputs["image"].mask[1].fill_(false);
  inputs["text"].mask[1].fill_(false);
  EXPECT_NE(test::error_of([&] { fusion->forward(inputs); }).find("an example has none of its modalities"),
            std::string::npos);
  inputs["text"].pooled = torch::randn({3, kDim + 1});
  EXPECT_NE(test::error_of([&] { fusion->forward(inputs); }).find("pooled must be [3, 16]"),
            std::string::npos);
  auto huge = config_for("tensor");
  huge.tensor_dim = 200;
  EXPECT_NE(test::error_of([&] { make_fusion(huge); }).find("low-rank"), std::string::npos);
}

}  // namespace
}  // namespace mmlearn
