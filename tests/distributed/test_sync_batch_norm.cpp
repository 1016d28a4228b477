// SyncBatchNorm's arithmetic (distributed/data_parallel.h: batch_norm) against libtorch's BatchNorm, in a
// group of one process: the same outputs, gradients and running statistics.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mmlearn/distributed/data_parallel.h"

namespace mmlearn {
namespace {

TEST(SyncBatchNorm, OneProcessGroupMatchesBatchNorm) {
  ParallelEnvironment env;
  env.master_addr = "127.0.0.1";
  env.master_port = 20000 + static_cast<int>(::getpid() % 20000);
  DataParallel group(env);
  torch::manual_seed(3);
  torch::nn::BatchNorm2d reference(6), synced(6);
  {
    torch::NoGradGuard no_grad;
    reference->weight.uniform_(0.5, 1.5);
    reference->bias.uniform_(-1, 1);
    synced->weight.copy_(reference->weight);
    synced->bias.copy_(reference->bias);
  }
  const auto x = (torch::randn({5, 6, 3, 2}) * 3 + 1).set_requires_grad(true);
  const auto x2 = x.detach().clone().set_requires_grad(true);
  const auto upstream = torch::randn({5, 6, 3, 2});
  const auto a = reference->forward(x), b = batch_norm(*synced, x2);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
  (a * upstream).sum().backward();
  (b * upstream).sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad(), x2.grad(), 1e-5, 1e-6)) << (x.grad() - x2.grad()).abs().max();
  EXPECT_TRUE(torch::allclose(reference->weight.grad(), synced->weight.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(reference->bias.grad(), synced->bias.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(reference->running_mean, synced->running_mean, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(reference->running_var, synced->running_var, 1e-5, 1e-6));
  EXPECT_EQ(reference->num_batches_tracked.item<int64_t>(), synced->num_batches_tracked.item<int64_t>());
}

}  // namespace
}  // namespace mmlearn
