#include "mmlearn/distributed/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"

extern char** environ;

namespace mmlearn {

namespace {

// A port the kernel has just found free on 127.0.0.1, for rank 0's rendezvous store.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  check(fd >= 0, "--nproc: cannot open a socket: ", std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  check(ok, "--nproc: cannot find a free port on 127.0.0.1: ", std::strerror(errno));
  return ntohs(address.sin_port);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return str_cat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return str_cat("was killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  return "stopped";
}

}  // namespace

std::vector<std::string> without_nproc(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--nproc") {
      ++i;
      continue;
    }
    if (argv[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(argv[i]);
  }
  return out;
}

int launch_local_workers(int nproc, const std::vector<std::string>& argv) {
  const int port = free_port();
  // Everything the children need is built before fork: between fork and exec only async-signal-safe calls.
  std::vector<std::vector<std::string>> environments(static_cast<size_t>(nproc));
  for (int rank = 0; rank < nproc; ++rank) {
    auto& env = environments[static_cast<size_t>(rank)];
    for (char** e = environ; *e; ++e) {
      const std::string entry = *e;
      const std::string name = entry.substr(0, entry.find('='));
      if (name != "RANK" && name != "WORLD_SIZE" && name != "LOCAL_RANK" && name != "LOCAL_WORLD_SIZE" &&
          name != "MASTER_ADDR" && name != "MASTER_PORT")
        env.push_back(entry);
    }
    env.push_back(str_cat("RANK=", rank));
    env.push_back(str_cat("LOCAL_RANK=", rank));
    env.push_back(str_cat("WORLD_SIZE=", nproc));
    env.push_back(str_cat("LOCAL_WORLD_SIZE=", nproc));
    env.push_back("MASTER_ADDR=127.0.0.1");
    env.push_back(str_cat("MASTER_PORT=", port));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();

  std::vector<pid_t> workers;
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<char*> env;
    for (const auto& e : environments[static_cast<size_t>(rank)]) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the launcher gone: so are its workers
      if (::getppid() != parent) ::_exit(1);
      ::execve("/proc/self/exe", args.data(), env.data());
      ::_exit(127);
    }
    if (pid < 0) {
      for (pid_t w : workers) ::kill(w, SIGTERM);
      throw Error(str_cat("--nproc: cannot start worker ", rank, ": ", std::strerror(errno)));
    }
    workers.push_back(pid);
  }

  int result = 0;
  size_t running = workers.size();
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    size_t rank = 0;
    while (rank < workers.size() && workers[rank] != pid) ++rank;
    if (rank == workers.size()) continue;
    workers[rank] = 0;
    --running;
    const bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    if (!failed || result != 0) continue;
    result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (running > 0)
      // One write: the other workers' progress lines share the terminal and would land inside it.
      std::cerr << str_cat("error: worker ", rank, " of ", nproc, " ", describe(status),
                           "; stopping the other workers\n")
                << std::flush;
    for (pid_t w : workers)
      if (w > 0) ::kill(w, SIGTERM);
  }
  return result;
}

}  // namespace mmlearn
