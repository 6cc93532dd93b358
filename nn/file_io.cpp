#include "nn/file_io.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "autograd/error.h"
#include "nn/file_checks.h"

namespace tg {
namespace fs = std::filesystem;
namespace {

void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), O_RDONLY | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// `dir` absolute, symbolic links of its existing part resolved, without a trailing separator:
// the real directory is the one swapped, not a link to it.
fs::path normal_dir(const std::string& dir) {
  std::error_code ec;
  fs::path d = fs::weakly_canonical(fs::absolute(fs::path(dir)), ec);
  if (ec) d = fs::absolute(fs::path(dir));
  d = d.lexically_normal();
  if (d.filename().empty()) d = d.parent_path();
  return d;
}

FileFaultHook fault_hook = nullptr;

// True when the test hook makes `step` fail (set_file_fault_hook); the caller then takes the path
// of its system call failing, with errno EIO.
bool fault_here(const char* step) {
  if (!fault_hook) return false;
  try {
    fault_hook(step);
    return false;
  } catch (...) {
    errno = EIO;
    return true;
  }
}

// fs::rename, or the failure the test hook injects at `step`.
void rename_step(const char* step, const fs::path& from, const fs::path& to, std::error_code& ec) {
  if (fault_here(step))
    ec = std::make_error_code(std::errc::io_error);
  else
    fs::rename(from, to, ec);
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The temporary names tapegrad's writers use inside a checkpoint directory: NAME.tmp
// (save_safetensors), NAME.tmp<pid> (write_file_atomically) and .tapegrad-probe-<pid>
// (check_writable_dir).
bool is_own_temporary(std::string_view name, const OwnNames& own) {
  constexpr std::string_view probe = ".tapegrad-probe-";
  if (name.starts_with(probe)) return name.size() > probe.size() && all_digits(name.substr(probe.size()));
  for (const std::string& n : own)
    if (name.starts_with(n) && name.substr(n.size()).starts_with(".tmp") && all_digits(name.substr(n.size() + 4)))
      return true;
  return false;
}

// Entries of `dir` other than regular files named in `own` (and, if `temporaries_are_own`, other
// than is_own_temporary), sorted, folders with a trailing '/'. tg::Error when `dir` exists but
// cannot be listed (then nobody can tell what is in it).
std::vector<std::string> entries_outside(const fs::path& dir, const OwnNames& own, bool temporaries_are_own) {
  std::vector<std::string> outside;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return outside;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code ignored;
    const fs::file_status st = it->symlink_status(ignored);
    const bool regular = fs::is_regular_file(st);
    const bool named = std::find(own.begin(), own.end(), name) != own.end();
    if (regular && (named || (temporaries_are_own && is_own_temporary(name, own)))) continue;
    outside.push_back(fs::is_directory(st) ? name + "/" : name);
  }
  TG_CHECK(!ec, "cannot list the directory {}: {}", dir.string(), ec.message());
  std::sort(outside.begin(), outside.end());
  return outside;
}

// "a, b, c" or "a, b, ... and 7 more".
std::string name_list(const std::vector<std::string>& names) {
  constexpr size_t shown = 10;
  if (names.size() <= shown) return fmt::format("{}", fmt::join(names, ", "));
  std::vector<std::string> head(names.begin(), names.begin() + shown);
  return fmt::format("{} and {} more", fmt::join(head, ", "), names.size() - shown);
}

// "DIR holds files tapegrad did not write: a, b/ (why; what to do)".
std::string foreign_problem(const std::string& dir, const std::vector<std::string>& foreign, const OwnNames& own) {
  return fmt::format(
      "{} holds files tapegrad did not write: {} (a checkpoint replaces the directory as a whole, so it "
      "is written only into a new or empty directory or one holding a tapegrad checkpoint of the same "
      "kind, whose files are {}; move them elsewhere or choose another directory)",
      dir, name_list(foreign), fmt::join(own, ", "));
}

// Removes tapegrad's files (own names and their temporaries) from `d`, then `d` itself if that
// emptied it; never anything else, never recursively. Best effort: a failure leaves `d` for the
// next save to clean up. True when `d` is gone.
bool remove_own_files(const fs::path& d, const OwnNames& own) {
  std::error_code ec;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ignored;
    const std::string name = it->path().filename().string();
    const bool named = std::find(own.begin(), own.end(), name) != own.end();
    if (fs::is_regular_file(it->symlink_status(ignored)) && (named || is_own_temporary(name, own)))
      files.push_back(it->path());
  }
  for (const fs::path& f : files)
    if (!fault_here("remove a file of a checkpoint")) fs::remove(f, ec);
  if (fault_here("remove a checkpoint directory")) return false;
  return fs::remove(d, ec) && !ec;  // rmdir: fails, leaving `d`, when something else is inside
}

// Leftovers beside `dir` (`.NAME.saving-PID`, `.NAME.old-PID`) of processes no longer alive, or of
// this process (an earlier failed save): emptied of tapegrad's files and removed. A `.NAME.old-PID`
// while `dir` is missing is the previous checkpoint of a writer killed between its two renames
// (the fallback of write_directory_atomically): renamed back to `dir` instead.
void remove_leftovers(const fs::path& dir, const OwnNames& own) {
  const fs::path parent = dir.parent_path();
  const std::string saving = fmt::format(".{}.saving-", dir.filename().string()),
                    old = fmt::format(".{}.old-", dir.filename().string());
  std::error_code ec;
  std::vector<std::pair<fs::path, bool>> found;  // (path, is an .old- one)
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool is_old = name.starts_with(old);
    if (!is_old && !name.starts_with(saving)) continue;
    const std::string pid_text = name.substr(is_old ? old.size() : saving.size());
    if (pid_text.empty() || pid_text.size() > 9 || !all_digits(pid_text)) continue;
    const long pid = std::stol(pid_text);
    const bool alive = pid != long(getpid()) && !(::kill(pid_t(pid), 0) != 0 && errno == ESRCH);
    if (pid > 0 && !alive) found.emplace_back(it->path(), is_old);
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.second > b.second; });  // .old- first
  for (const auto& [path, is_old] : found) {
    std::error_code ignored;
    if (is_old && !fs::exists(fs::symlink_status(dir, ignored))) {
      rename_step("rename a previous checkpoint back", path, dir, ignored);
      if (!ignored) continue;
    }
    remove_own_files(path, own);
  }
}

}  // namespace

void set_file_fault_hook(FileFaultHook hook) { fault_hook = hook; }

std::vector<std::string> foreign_entries(const std::string& dir, const OwnNames& own) {
  return entries_outside(fs::path(dir), own, /*temporaries_are_own=*/true);
}

std::string path_in(const std::string& dir, std::string_view file) { return (fs::path(dir) / file).string(); }

std::string read_file_bytes(const std::string& path) {
  // Checked first: a directory, a FIFO (which would wait for a writer) or /dev/zero (which never
  // ends) is refused by name instead of hanging or filling the memory.
  check_input_file(path, "");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  TG_CHECK(fd >= 0, "cannot read {}: {}", path, describe_path_error(errno));
  struct stat st {};
  std::string bytes;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) bytes.reserve(size_t(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      fail("error reading {}: {}", path, describe_path_error(err));
    }
    bytes.append(buffer, size_t(n));
  }
  ::close(fd);
  return bytes;
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  // The temporary name carries the pid so two writers of one path do not share a temp file.
  std::string tmp = fmt::format("{}.tmp{}", path, static_cast<long>(getpid()));
  {
    std::FILE* f = fault_here("create a temporary file") ? nullptr : std::fopen(tmp.c_str(), "wb");
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
  rename_step("rename a file into place", tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("cannot rename {} to {}: {}", tmp, path, ec.message());
  }
}

void write_directory_atomically(const std::string& dir_arg, const OwnNames& own,
                                const std::function<void(const std::string&)>& write) {
  std::error_code ec;
  const fs::path dir = normal_dir(dir_arg), parent = dir.parent_path();
  TG_CHECK(!fs::exists(dir, ec) || fs::is_directory(dir, ec), "cannot write the directory {}: a file of that name exists",
           dir_arg);
  remove_leftovers(dir, own);  // first, as it may rename a killed writer's previous checkpoint back to `dir`
  // Before anything is written: a directory holding files of others is not replaced as a whole.
  if (std::vector<std::string> foreign = entries_outside(dir, own, true); !foreign.empty())
    fail("{}", foreign_problem(dir_arg, foreign, own));
  if (fs::exists(dir, ec) && fs::equivalent(dir, fs::current_path(), ec)) {
    write(dir.string());  // swapping the working directory would leave the process in a deleted one
    return;
  }
  fs::create_directories(parent, ec);
  TG_CHECK(!ec, "cannot create the directory {}: {}", parent.string(), ec.message());
  const std::string name = dir.filename().string();
  const fs::path tmp = parent / fmt::format(".{}.saving-{}", name, long(getpid()));
  if (fault_here("create the new directory"))
    ec = std::make_error_code(std::errc::io_error);
  else if (!fs::create_directory(tmp, ec) && !ec)
    fail("cannot create the directory {}: a leftover of an earlier save is there and could not be removed (it holds: "
         "{}); move it away",
         tmp.string(), name_list(entries_outside(tmp, {}, false)));
  TG_CHECK(!ec, "cannot create the directory {}: {}", tmp.string(), ec.message());

  // 1. The new checkpoint, complete and on disk, at `tmp`: a crash of the machine after the swap
  //    must not find empty files.
  try {
    write(tmp.string());
    if (std::vector<std::string> stray = entries_outside(tmp, own, false); !stray.empty())
      throw std::logic_error(fmt::format("write_directory_atomically: the writer of {} produced {}, which are not among "
                                         "the names it owns ({}); left in {}",
                                         dir_arg, name_list(stray), fmt::join(own, ", "), tmp.string()));
    TG_CHECK(!fault_here("fsync the new directory"), "cannot write {}: {}", tmp.string(), std::strerror(errno));
    for (const fs::directory_entry& e : fs::directory_iterator(tmp)) fsync_path(e.path(), false);
    fsync_path(tmp, true);
  } catch (...) {
    remove_own_files(tmp, own);
    throw;
  }

  // 2. Swapped in: renamed when there is no `dir`, exchanged with it otherwise, or, where the file
  //    system cannot exchange, the old one renamed aside first.
  if (!fs::exists(fs::symlink_status(dir, ec))) {
    rename_step("rename the new directory into place", tmp, dir, ec);  // replaces at most an empty directory
    if (ec) {
      remove_own_files(tmp, own);
      fail("cannot rename {} to {}: {}", tmp.string(), dir.string(), ec.message());
    }
    fsync_path(parent, true);
    return;
  }
  fs::path old = tmp;  // where the old content ends up
  int err = 0;
  if (fault_here("exchange: the file system cannot"))  // lets the tests take the fallback below
    err = EINVAL;
  else if (fault_here("exchange the directories"))
    err = EIO;
  else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0)
    err = errno;
  if (err != 0) {
    if (err != EINVAL && err != ENOSYS && err != ENOTSUP) {
      remove_own_files(tmp, own);
      fail("cannot swap {} into {}: {}", tmp.string(), dir.string(), std::strerror(err));
    }
    old = parent / fmt::format(".{}.old-{}", name, long(getpid()));
    rename_step("rename the old directory aside", dir, old, ec);
    if (ec) {
      remove_own_files(tmp, own);
      fail("cannot rename {} to {}: {}", dir.string(), old.string(), ec.message());
    }
    rename_step("rename the new directory into place", tmp, dir, ec);
    if (ec) {
      std::error_code back;
      fs::rename(old, dir, back);
      if (back) fail("cannot rename {} to {}: {}; the previous checkpoint is at {}", tmp.string(), dir.string(),
                     ec.message(), old.string());
      remove_own_files(tmp, own);
      fail("cannot rename {} to {}: {}", tmp.string(), dir.string(), ec.message());
    }
  }

  // 3. The old content, now at `old`: removed file by file, unless something tapegrad did not write
  //    appeared in it during the save; then the swap is undone and the save fails.
  std::vector<std::string> appeared;
  try {
    appeared = entries_outside(old, own, true);
  } catch (const Error&) {
    return;  // unreadable: left as it is (the new checkpoint is in place)
  }
  if (appeared.empty()) {
    remove_own_files(old, own);
    fsync_path(parent, true);
    return;
  }
  bool undone = false;
  if (old == tmp) {  // exchanged: exchange back
    undone = !fault_here("exchange the directories back") &&
             ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0;
  } else {
    rename_step("rename the new directory back", dir, tmp, ec);
    if (!ec) {
      fs::rename(old, dir, ec);
      undone = !ec;
      if (!undone) fs::rename(tmp, dir, ec);  // the new one back in place rather than no directory at all
    }
  }
  if (!undone)
    fail("{} appeared in {} during the save; the new checkpoint is in place, and the previous content of {}, with "
         "them, is at {}",
         name_list(appeared), dir.string(), dir.string(), old.string());
  remove_own_files(tmp, own);
  fsync_path(parent, true);
  fail("{} appeared in {} during the save, so the save was undone: {} is as it was before it",
       name_list(appeared), dir.string(), dir.string());
}

void check_writable_dir(const std::string& dir, const std::string& flag, const OwnNames& own, uint64_t bytes_needed) {
  std::error_code ec;
  fs::path d = fs::path(dir);
  TG_CHECK(!fs::exists(d, ec) || fs::is_directory(d, ec), "{}: {} exists and is not a directory", flag, dir);
  std::vector<std::string> foreign;
  try {
    foreign = entries_outside(normal_dir(dir), own, true);
  } catch (const Error& e) {
    fail("{}: {}", flag, e.what());
  }
  TG_CHECK(foreign.empty(), "{}: {}", flag, foreign_problem(dir, foreign, own));
  fs::create_directories(d, ec);
  TG_CHECK(!ec, "{}: cannot create the directory {}: {}", flag, dir, ec.message());
  const std::string probe = (d / fmt::format(".tapegrad-probe-{}", long(getpid()))).string();
  {
    std::FILE* f = std::fopen(probe.c_str(), "wb");
    TG_CHECK(f != nullptr, "{}: cannot write into {}: {}", flag, dir, std::strerror(errno));
    bool ok = std::fputs("probe", f) >= 0 && std::fflush(f) == 0;
    int err = errno;
    ok = std::fclose(f) == 0 && ok;
    if (!ok) err = errno ? errno : err;
    std::remove(probe.c_str());
    TG_CHECK(ok, "{}: cannot write into {}: {}", flag, dir, std::strerror(err));
  }
  // Checkpoints are written beside the directory first (write_directory_atomically).
  fs::path nd = normal_dir(dir);
  const fs::path sibling = nd.parent_path() / fmt::format(".{}.probe-{}", nd.filename().string(), long(getpid()));
  if (!fs::equivalent(nd, fs::current_path(), ec)) {
    fs::create_directory(sibling, ec);
    TG_CHECK(!ec, "{}: cannot create directories in {} (checkpoints are written beside {} and swapped in): {}", flag,
             nd.parent_path().string(), dir, ec.message());
    fs::remove(sibling, ec);
  }
  if (bytes_needed > 0) {
    fs::space_info space = fs::space(nd, ec);
    TG_CHECK(ec || space.available >= bytes_needed,
             "{}: the file system of {} has {:.1f} MB free, a checkpoint needs about {:.1f} MB", flag, dir,
             double(space.available) / 1e6, double(bytes_needed) / 1e6);
  }
}

}  // namespace tg
