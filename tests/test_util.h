// Helpers shared by the tests: a fresh temporary directory per test, and the paths the build passes in.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

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

}  // namespace mmlearn::test
