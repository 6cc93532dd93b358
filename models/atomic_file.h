#pragma once
// Writing a file so that readers see the old or the new content, never a half-written one:
// write to a temporary name beside it, then rename into place.
#include <string>

namespace tg::models {

/// Writes `content` to `path` atomically (via `path` + ".tmp"). Throws tg::Error naming `op` and
/// the file on failure.
void write_file_atomic(const std::string& path, const std::string& content, const char* op);
/// The whole file; tg::Error naming `op` and the file when it cannot be read.
std::string read_file(const std::string& path, const char* op);

}  // namespace tg::models
