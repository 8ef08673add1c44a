// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
#ifndef VFIOMIG_TESTS_DAEMON_TEMP_DIR_H_
#define VFIOMIG_TESTS_DAEMON_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace vfiomig::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    // Short paths: unix socket paths must fit in 108 bytes.
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
        "/vmd.XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `content` to `name` inside the directory; returns its path.
  std::string WriteFile(const std::string& name,
                        const std::string& content) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream(file) << content;
    return file.native();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace vfiomig::testing

#endif  // VFIOMIG_TESTS_DAEMON_TEMP_DIR_H_
