// A fresh temporary directory per test, removed afterwards.
#ifndef VFIOMIG_TESTS_DAEMON_STORE_STORE_TEST_UTIL_H_
#define VFIOMIG_TESTS_DAEMON_STORE_STORE_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace vfiomig {

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "vfiomig-store-XXXXXX")
            .string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_TESTS_DAEMON_STORE_STORE_TEST_UTIL_H_
