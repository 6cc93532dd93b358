#include "models/atomic_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/error.h"

namespace tg::models {

void write_file_atomic(const std::string& path, const std::string& content, const char* op) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TG_CHECK(out.good(), "{}: cannot open {} for writing", op, tmp);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    TG_CHECK(out.good(), "{}: writing {} failed (disk full?)", op, tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  TG_CHECK(!ec, "{}: cannot rename {} to {}: {}", op, tmp, path, ec.message());
}

std::string read_file(const std::string& path, const char* op) {
  std::ifstream in(path, std::ios::binary);
  TG_CHECK(in.good(), "{}: cannot open {}", op, path);
  std::ostringstream text;
  text << in.rdbuf();
  TG_CHECK(!in.bad(), "{}: reading {} failed", op, path);
  return text.str();
}

}  // namespace tg::models
