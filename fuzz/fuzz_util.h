#pragma once
// Helpers shared by the libFuzzer targets (tools/fuzz.sh builds and runs them).
// A target returns normally for input the parser rejects with tg::Error; anything else
// escaping (another exception, a crash, a sanitizer report, a leak, an allocation beyond
// -malloc_limit_mb) is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace tg::fuzz {

/// A file holding the fuzzer's bytes for the parsers that read paths; removed on destruction.
class TempFile {
 public:
  TempFile(const uint8_t* data, size_t size) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/tapegrad-fuzz-" + std::to_string(getpid());
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace tg::fuzz
