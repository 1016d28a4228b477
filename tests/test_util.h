// Helpers shared by the tests: a fresh temporary directory per test, and the paths the build passes in.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>

#include "mmlearn/core/error.h"

namespace mmlearn::test {

inline std::filesystem::path temp_dir(const std::string& name) {
  auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  auto dir = std::filesystem::temp_directory_path() / "mmlearn-tests" /
             (std::string(info->test_suite_name()) + "." + info->name() + "." + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::filesystem::path source_dir() { return MMLEARN_SOURCE_DIR; }
inline std::filesystem::path shared_dir() { return MMLEARN_SHARED_DIR; }

struct CliRun {
  int status;          // the exit status; -1 when the process died of a signal
  std::string output;  // stdout and stderr together
  int64_t max_rss_kb;  // its peak resident memory
};

// Runs a shell command line and returns its exit status, output (stdout and stderr) and peak memory.
inline CliRun run_shell(const std::string& shell_command) {
  int fds[2];  // close-on-exec: a command run from another thread at the same time must not hold our pipe
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, "pipe failed", 0};
  const std::string command = "exec " + shell_command + " 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  CliRun r{-1, "", 0};
  std::array<char, 4096> buf;
  for (ssize_t n; (n = ::read(fds[0], buf.data(), buf.size())) > 0;) r.output.append(buf.data(), size_t(n));
  ::close(fds[0]);
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.max_rss_kb = usage.ru_maxrss;
  return r;
}

// Runs the mmlearn command line (quiet) with `args` (shell words).
inline CliRun run_cli(const std::string& args) {
  return run_shell(std::string(MMLEARN_CLI) + " --quiet " + args);
}

// The message of the mmlearn::Error that `f` throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// `data` compressed in gzip's format, as `gzip` writes it.
inline std::string gzip(std::string_view data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// CLIP's real vocabulary files beside the checkout (../shared/assets/clip); tests that need them skip
// without.
inline std::filesystem::path clip_assets() { return shared_dir() / "assets" / "clip"; }

// Runs tests/fixtures/<script> OUT_DIR [args] once per version of the script and returns OUT_DIR (empty if
// the script failed). ctest runs each test in its own process, possibly in parallel: the first to finish
// renames its scratch directory into place, the others use it.
inline std::filesystem::path python_fixture(const std::string& script, const std::string& args = "") {
  namespace fs = std::filesystem;
  const fs::path path = source_dir() / "tests" / "fixtures" / script;
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  const fs::path dir = fs::temp_directory_path() / "mmlearn-tests" /
                       (script + "." + std::to_string(std::hash<std::string>{}(text + args)));
  if (!fs::exists(dir / ".complete")) {
    fs::path scratch = dir;
    scratch += "." + std::to_string(::getpid());
    std::error_code ignored;
    fs::remove_all(scratch, ignored);
    const std::string command = "/usr/bin/python3 '" + path.string() + "' '" + scratch.string() + "' " + args;
    if (std::system(command.c_str()) == 0) {
      std::ofstream(scratch / ".complete") << "\n";
      fs::rename(scratch, dir, ignored);  // fails when another process was first: use its files
    }
    fs::remove_all(scratch, ignored);
  }
  return fs::exists(dir / ".complete") ? dir : fs::path();
}

// A directory that `make(dir)` fills once for every test process of this build: ctest runs each test in its
// own process, two at a time, and training the same fixture runs in each would cost minutes. The first
// process to take the lock makes it; the others wait on the lock and use it. A rebuilt test binary or CLI
// makes it afresh. Returns the directory, or an empty path when `make` returned false.
inline std::filesystem::path shared_fixture(const std::string& name,
                                            const std::function<bool(const std::filesystem::path&)>& make) {
  namespace fs = std::filesystem;
  auto stamp = [](const fs::path& file) {
    return std::to_string(fs::last_write_time(file).time_since_epoch().count());
  };
  const fs::path dir = fs::temp_directory_path() / "mmlearn-tests" /
                       (name + "." + stamp(fs::read_symlink("/proc/self/exe")) + "." + stamp(MMLEARN_CLI));
  fs::create_directories(dir.parent_path());
  const int lock = ::open((dir.string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0) return {};
  if (!fs::exists(dir / ".complete")) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    bool made = false;
    try {
      made = make(dir);
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << ": " << e.what();
    }
    if (made) std::ofstream(dir / ".complete") << "\n";
  }
  ::close(lock);  // (releases the lock)
  return fs::exists(dir / ".complete") ? dir : fs::path();
}

// Whisper's real assets beside the checkout (../shared/assets/whisper), and the reference outputs that
// tests/fixtures/whisper_reference.py makes from them (empty when either is missing or the script failed).
inline std::filesystem::path whisper_assets() { return shared_dir() / "assets" / "whisper"; }
inline std::filesystem::path whisper_fixture() {
  if (!std::filesystem::exists(whisper_assets() / "multilingual.tiktoken")) return {};
  return python_fixture("whisper_reference.py", "--assets '" + whisper_assets().string() + "'");
}

}  // namespace mmlearn::test
