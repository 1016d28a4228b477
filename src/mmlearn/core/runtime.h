// Process-wide settings every mmlearn program makes once at start-up.
//
//   int main(...) { mmlearn::init_runtime(threads); ... }
#pragma once

namespace mmlearn {

// Sets libtorch's intra-op threads (0: every core; libtorch's own default is one per physical core, which on
// small VMs is one) and keeps freed tensor memory in the heap: glibc otherwise returns every large block to
// the kernel and page-faults it back on the next step, which costs training ~10% (measured on clip-tiny).
void init_runtime(int threads = 0);

}  // namespace mmlearn
