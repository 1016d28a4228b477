#include "mmlearn/core/runtime.h"

#include <malloc.h>
#include <torch/torch.h>

#include <thread>

namespace mmlearn {

void init_runtime(int threads) {
  torch::set_num_threads(threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency()));
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // glibc's maximum: activations below it come from the heap
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  mallopt(M_TOP_PAD, 64 * 1024 * 1024);
}

}  // namespace mmlearn
