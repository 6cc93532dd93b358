#pragma once
// Whole-file reads and atomic writes: a file is written to a temporary name beside it and
// renamed into place, so a reader sees the old content or the new, never half a file, and a
// failed write leaves the old file intact. Errors name the file.
//
// Checkpoint directories are written as a whole (write_directory_atomically): tapegrad writes its
// own files only, into a new sibling directory, and swaps it with the old one. Files and folders
// that tapegrad did not write are never moved, renamed or deleted: a directory holding any is
// refused before anything is written (check_writable_dir refuses it before training).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tg {

/// The path of `file` inside directory `dir` (dir/file).
std::string path_in(const std::string& dir, std::string_view file);

/// The whole file as bytes; tg::Error naming `path` when it cannot be opened or read.
std::string read_file_bytes(const std::string& path);
/// Writes `bytes` to `path` through `path`.tmp<pid>, then renames it into place.
void write_file_atomically(const std::string& path, std::string_view bytes);

/// The names a kind of checkpoint directory may hold (e.g. {"config.json", "model.safetensors",
/// "vocab.json"}): regular files at its top level, nothing else.
using OwnNames = std::vector<std::string>;

/// Entries of `dir` that tapegrad did not write, sorted, folders with a trailing '/': every entry
/// but regular files named in `own` and tapegrad's temporaries (NAME.tmp, NAME.tmp<pid> of an own
/// NAME; .tapegrad-probe-<pid>). Empty when `dir` does not exist.
std::vector<std::string> foreign_entries(const std::string& dir, const OwnNames& own);

/// Writes a directory of several files as one, keeping every file that tapegrad did not write:
///  1. `dir` holding an entry outside `own` (foreign_entries) is refused before anything is
///     written: tg::Error naming `dir` and listing them (a checkpoint replaces the directory as a
///     whole, so it is written only into a new or empty directory or one holding a checkpoint).
///  2. `write(tmp)` fills a new sibling directory `.NAME.saving-PID` with names from `own` only (a
///     name outside it is a bug: std::logic_error); its files are fsynced, then it is swapped with
///     `dir` in one renameat2(RENAME_EXCHANGE), or renamed to `dir` when there is none.
///  3. The old content, now at the temporary name, is removed file by file (own names only, then
///     rmdir). If a foreign entry appeared in `dir` during the save, the two are swapped back, so
///     `dir` is as it was before the save, and tg::Error names the entry.
/// A failure at any step leaves `dir` as it was before the save (or, past the swap, as after it);
/// the temporary directory is emptied of tapegrad's files and removed, never removed recursively.
/// A process killed at any moment leaves `dir` as before or as after, never a mix; a leftover
/// `.NAME.saving-PID` or `.NAME.old-PID` of a dead process is emptied of tapegrad's files and
/// removed by the next call (kept when something else is inside). Where the file system cannot
/// exchange, `dir` is renamed aside (`.NAME.old-PID`) and the new one renamed in: a kill between
/// the two leaves no `dir`, and the next call renames the old one back first.
/// `dir` equal to the working directory is written in place, file by file.
void write_directory_atomically(const std::string& dir, const OwnNames& own,
                                const std::function<void(const std::string& tmp_dir)>& write);

/// Checks, before hours of work, that `dir` can receive the output of write_directory_atomically:
/// that an existing `dir` holds nothing outside `own` (foreign_entries); creates it if needed,
/// writes and removes a probe file in it and a probe directory beside it, and checks that its file
/// system has `bytes_needed` free. tg::Error starting with `flag` (e.g. "--out: DIR holds files
/// tapegrad did not write: notes.txt, data/ (...)") naming the path and the problem otherwise.
void check_writable_dir(const std::string& dir, const std::string& flag, const OwnNames& own,
                        uint64_t bytes_needed = 0);

/// For tests only: when set, called with the step's name (e.g. "exchange the directories") before
/// each step of write_directory_atomically and write_file_atomically that changes the disk; a hook
/// that throws makes that step fail as its system call would (errno EIO), and the code goes on as
/// it does on such a failure. The step "exchange: the file system cannot" failing makes
/// write_directory_atomically take its no-RENAME_EXCHANGE fallback. nullptr (the default) turns it
/// off. Not thread-safe.
using FileFaultHook = void (*)(const char* step);
void set_file_fault_hook(FileFaultHook hook);

}  // namespace tg
