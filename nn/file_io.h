#pragma once
// Whole-file reads and atomic writes: a file is written to a temporary name beside it and
// renamed into place, so a reader sees the old content or the new, never half a file, and a
// failed write leaves the old file intact. Errors name the file.
#include <string>
#include <string_view>

namespace tg {

/// The whole file as bytes; tg::Error naming `path` when it cannot be opened or read.
std::string read_file_bytes(const std::string& path);
/// Writes `bytes` to `path` through `path`.tmp<pid>, then renames it into place.
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace tg
