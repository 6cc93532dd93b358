#pragma once
// Whole-file reads and atomic writes: a file is written to a temporary name beside it and
// renamed into place, so a reader sees the old content or the new, never half a file, and a
// failed write leaves the old file intact. Errors name the file.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace tg {

/// The whole file as bytes; tg::Error naming `path` when it cannot be opened or read.
std::string read_file_bytes(const std::string& path);
/// Writes `bytes` to `path` through `path`.tmp<pid>, then renames it into place.
void write_file_atomically(const std::string& path, std::string_view bytes);

/// Writes a directory of several files as one: `write(tmp)` fills a new sibling directory
/// (`.NAME.saving-PID`), whose files are fsynced before it is swapped with `dir` in one
/// renameat2(RENAME_EXCHANGE); the old content is then removed. Entries of the old `dir` that
/// `write` did not produce are carried over (hard links; subdirectories moved). A process killed
/// at any moment leaves `dir` as it was before or as it is after, never a mix; its leftover
/// temporary directory is removed by the next call. Where the file system cannot exchange, the old
/// directory is renamed aside first (a kill between the two renames leaves `.NAME.old-PID`).
/// `dir` equal to the working directory is written in place, file by file.
void write_directory_atomically(const std::string& dir, const std::function<void(const std::string& tmp_dir)>& write);

/// Checks, before hours of work, that `dir` can receive the output of write_directory_atomically:
/// creates it if needed, writes and removes a probe file in it and a probe directory beside it,
/// and checks that its file system has `bytes_needed` free. tg::Error starting with `flag`
/// (e.g. "--out: ...") naming the path and the problem otherwise.
void check_writable_dir(const std::string& dir, const std::string& flag, uint64_t bytes_needed = 0);

}  // namespace tg
