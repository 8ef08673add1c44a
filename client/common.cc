#include "client/common.h"

#include <iostream>
#include <string>

#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace vfiomig::cli {

void PrintError(absl::string_view message) {
  // Daemon and gRPC messages sometimes span lines; scripts and the tests
  // rely on "one error, one line".
  std::string line =
      absl::StrReplaceAll(absl::StripTrailingAsciiWhitespace(message),
                          {{"\r\n", "; "}, {"\n", "; "}});
  std::cerr << "vfio-migctl: " << line << std::endl;
}

}  // namespace vfiomig::cli
