#include "mmlearn/core/runtime.h"

#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace mmlearn {

void init_runtime(int threads) {
  // Local data-parallel workers (torchrun's LOCAL_WORLD_SIZE, `--nproc`) share the cores.
  const char* local_world = std::getenv("LOCAL_WORLD_SIZE");
  const int workers = local_world ? std::clamp(std::atoi(local_world), 1, 1 << 16) : 1;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads > 0 ? threads : std::max(1, cores / workers));
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // glibc's maximum: activations below it come from the heap
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  mallopt(M_TOP_PAD, 64 * 1024 * 1024);
}

}  // namespace mmlearn
