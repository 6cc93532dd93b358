#include "nn/file_io.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "autograd/error.h"

namespace tg {

std::string read_file_bytes(const std::string& path) {
  std::error_code ec;
  TG_CHECK(!std::filesystem::is_directory(path, ec), "cannot read {}: it is a directory", path);
  std::ifstream in(path, std::ios::binary);
  TG_CHECK(in.good(), "cannot open {}: {}", path, std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TG_CHECK(!in.bad(), "error reading {}", path);
  return bytes;
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  // The temporary name carries the pid so two writers of one path do not share a temp file.
  std::string tmp = fmt::format("{}.tmp{}", path, static_cast<long>(getpid()));
  {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    TG_CHECK(f != nullptr, "cannot write {} (via {}): {}", path, tmp, std::strerror(errno));
    size_t written = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
    bool ok = written == bytes.size() && std::fflush(f) == 0;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
      std::remove(tmp.c_str());
      fail("cannot write {} (via {}): {}", path, tmp, std::strerror(errno));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("cannot rename {} to {}: {}", tmp, path, ec.message());
  }
}

}  // namespace tg
