// Runs a libFuzzer target's LLVMFuzzerTestOneInput over files, without
// libFuzzer: the committed seed corpus and the regression inputs (crashes
// the fuzzer once found) become an ordinary test in every build, under
// gcc, ASan and UBSan alike.
//
//   <target>_replay DIR_OR_FILE...
// Exits 0 when every input ran (a broken invariant traps); 2 when a path
// cannot be read or there is no input at all.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path path(argv[i]);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      for (const fs::directory_entry& entry : fs::directory_iterator(path)) {
        if (entry.is_regular_file()) inputs.push_back(entry.path());
      }
    } else if (fs::is_regular_file(path, ec)) {
      inputs.push_back(path);
    } else if (fs::exists(path, ec)) {
      std::fprintf(stderr, "%s: neither a file nor a directory\n", argv[i]);
      return 2;
    }
    // A missing directory (no regressions yet) is fine.
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "no inputs\n");
    return 2;
  }
  for (const fs::path& input : inputs) {
    std::ifstream file(input, std::ios::binary);
    if (!file) {
      std::fprintf(stderr, "%s: cannot read\n", input.c_str());
      return 2;
    }
    const std::string bytes((std::istreambuf_iterator<char>(file)),
                            std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()),
                           bytes.size());
  }
  std::printf("%zu inputs ran\n", inputs.size());
  return 0;
}
