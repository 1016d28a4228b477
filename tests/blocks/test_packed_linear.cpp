#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mmlearn/blocks/packed_linear.h"
#include "mmlearn/blocks/transformer.h"
#include "mmlearn/core/precision.h"

using namespace mmlearn;

namespace {

struct Weights {
  torch::Tensor weight = torch::randn({24, 40}, torch::requires_grad());
  torch::Tensor bias = torch::randn({24}, torch::requires_grad());
};

}  // namespace

TEST(PackedLinear, MatchesDenseLinearInInferenceModeForAnyLeadingShape) {
  torch::manual_seed(0);
  Weights p;
  PackedLinear packed;
  for (auto shape : {std::vector<int64_t>{5, 40}, {3, 7, 40}, {2, 2, 3, 40}}) {
    auto x = torch::randn(shape);
    torch::Tensor expected, got, got_no_bias;
    {
      torch::NoGradGuard no_grad;
      expected = torch::nn::functional::linear(x, p.weight, p.bias);
    }
    {
      c10::InferenceMode inference;
      got = packed(x, p.weight, p.bias);
      got_no_bias = packed(x, p.weight, {});
    }
    EXPECT_EQ(got.sizes(), expected.sizes());
    EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(got_no_bias, expected - p.bias.detach(), 1e-5, 1e-5));
  }
}

TEST(PackedLinear, FollowsWeightsUpdatedInPlaceOrReplaced) {
  torch::manual_seed(1);
  Weights p;
  PackedLinear packed;
  auto x = torch::randn({4, 40});
  auto inference = [&](const torch::Tensor& w, const torch::Tensor& b) {
    c10::InferenceMode mode;
    return packed(x, w, b);
  };
  auto before = inference(p.weight, p.bias);
  {
    torch::NoGradGuard no_grad;  // as an optimizer step updates them
    p.weight.mul_(2);
    p.bias.add_(1);
  }
  auto after = inference(p.weight, p.bias);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(after, torch::nn::functional::linear(x, p.weight, p.bias), 1e-5, 1e-5));
  EXPECT_FALSE(torch::allclose(after, before, 1e-2, 1e-2));
  auto other = torch::randn({24, 40});
  EXPECT_TRUE(
      torch::allclose(inference(other, p.bias), torch::nn::functional::linear(x, other, p.bias), 1e-5, 1e-5));
}

TEST(PackedLinear, OutsideInferenceModeIsTheAutogradLinear) {
  torch::manual_seed(2);
  Weights p;
  PackedLinear packed;
  auto x = torch::randn({6, 40}, torch::requires_grad());
  packed(x, p.weight, p.bias).square().sum().backward();
  auto expected_grad = 2 * torch::nn::functional::linear(x, p.weight, p.bias).detach().t().mm(x.detach());
  ASSERT_TRUE(p.weight.grad().defined());
  EXPECT_TRUE(torch::allclose(p.weight.grad(), expected_grad, 1e-4, 1e-4));
  EXPECT_TRUE(x.grad().defined());
}

TEST(PackedLinear, UnderBf16AutocastComputesInBf16AsLinearDoes) {
  if (!cpu_has_native_bf16()) GTEST_SKIP() << "no native bf16 on this CPU";
  Weights p;
  PackedLinear packed;
  c10::InferenceMode inference;
  AutocastGuard autocast(Precision::bf16);
  EXPECT_EQ(packed(torch::randn({3, 40}), p.weight, p.bias).scalar_type(), torch::kBFloat16);
}

TEST(PackedLinear, TransformerOutputIsTheSameInInferenceModeAndUnderNoGrad) {
  torch::manual_seed(3);
  Transformer t(TransformerConfig{.width = 32, .layers = 2, .heads = 4});
  t->eval();
  auto x = torch::randn({2, 9, 32});
  torch::Tensor dense, packed;
  {
    torch::NoGradGuard no_grad;
    dense = t->forward(x, causal_mask(9));
  }
  {
    c10::InferenceMode inference;
    packed = t->forward(x, causal_mask(9));
  }
  EXPECT_TRUE(torch::allclose(packed, dense, 1e-5, 1e-5));
}
