// `mmlearn train --nproc N`: starts N local workers, each this same program with the command line minus
// --nproc, and the torchrun variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT) set for a group on 127.0.0.1. When a worker fails, the others are stopped and the launcher
// says which worker failed and how; it never leaves the rest waiting on a peer that is gone.
//
//   return mmlearn::launch_local_workers(2, {"mmlearn", "train", "--preset", "clip-tiny", ...});
#pragma once

#include <string>
#include <vector>

namespace mmlearn {

// Runs the workers to their end. Returns 0 when every worker succeeded, otherwise the exit status of the
// first that failed (128 + signal for a worker killed by a signal).
int launch_local_workers(int nproc, const std::vector<std::string>& argv);

// argv without "--nproc N" / "--nproc=N".
std::vector<std::string> without_nproc(const std::vector<std::string>& argv);

}  // namespace mmlearn
