#include "nn/file_io.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

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

// `dir` absolute, without a trailing separator.
fs::path normal_dir(const std::string& dir) {
  fs::path d = fs::absolute(fs::path(dir)).lexically_normal();
  if (d.filename().empty()) d = d.parent_path();
  return d;
}

// Removes the temporary directories `prefix`PID beside `dir` left by processes no longer alive.
void remove_stale(const fs::path& parent, const std::string& prefix) {
  std::error_code ec;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!name.starts_with(prefix)) continue;
    char* tail = nullptr;
    long pid = std::strtol(name.c_str() + prefix.size(), &tail, 10);
    if (pid <= 0 || *tail != '\0' || pid == long(getpid())) continue;
    if (::kill(pid_t(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      fs::remove_all(it->path(), ignored);
    }
  }
}

// Entries of `from` missing in `to`: regular files hard-linked (copied when links fail), the
// rest moved.
void carry_over(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::is_directory(from, ec)) return;
  for (const fs::directory_entry& e : fs::directory_iterator(from)) {
    fs::path target = to / e.path().filename();
    if (fs::exists(fs::symlink_status(target, ec))) continue;
    if (e.is_regular_file(ec) && !e.is_symlink(ec)) {
      fs::create_hard_link(e.path(), target, ec);
      if (ec) fs::copy_file(e.path(), target, ec);
    } else {
      fs::rename(e.path(), target, ec);
    }
    if (ec) fail("cannot carry {} over into the new {}: {}", e.path().string(), from.string(), ec.message());
  }
}

}  // namespace

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

namespace tg {

void write_directory_atomically(const std::string& dir_arg, const std::function<void(const std::string&)>& write) {
  std::error_code ec;
  const fs::path dir = normal_dir(dir_arg), parent = dir.parent_path();
  TG_CHECK(!fs::exists(dir, ec) || fs::is_directory(dir, ec), "cannot write the directory {}: a file of that name exists",
           dir_arg);
  if (fs::exists(dir, ec) && fs::equivalent(dir, fs::current_path(), ec)) {
    write(dir.string());  // swapping the working directory would leave the process in a deleted one
    return;
  }
  fs::create_directories(parent, ec);
  TG_CHECK(!ec, "cannot create the directory {}: {}", parent.string(), ec.message());
  const std::string name = dir.filename().string();
  remove_stale(parent, "." + name + ".saving-");
  remove_stale(parent, "." + name + ".old-");
  const fs::path tmp = parent / fmt::format(".{}.saving-{}", name, long(getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  TG_CHECK(!ec, "cannot create the directory {}: {}", tmp.string(), ec.message());
  try {
    write(tmp.string());
    carry_over(dir, tmp);
    // On disk before the swap: a crash of the machine after it must not find empty files.
    for (const fs::directory_entry& e : fs::directory_iterator(tmp))
      if (e.is_regular_file()) fsync_path(e.path(), false);
    fsync_path(tmp, true);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  if (!fs::exists(dir, ec)) {
    fs::rename(tmp, dir, ec);
    if (ec) {
      fs::remove_all(tmp, ec);
      fail("cannot rename {} to {}: {}", tmp.string(), dir.string(), ec.message());
    }
  } else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(tmp, ec);  // now the old content
  } else {
    int err = errno;
    if (err != EINVAL && err != ENOSYS && err != ENOTSUP) {
      fs::remove_all(tmp, ec);
      fail("cannot swap {} into {}: {}", tmp.string(), dir.string(), std::strerror(err));
    }
    const fs::path old = parent / fmt::format(".{}.old-{}", name, long(getpid()));
    fs::rename(dir, old, ec);
    if (!ec) fs::rename(tmp, dir, ec);
    if (ec) fail("cannot move {} into place at {}: {}", tmp.string(), dir.string(), ec.message());
    fs::remove_all(old, ec);
  }
  fsync_path(parent, true);
}

void check_writable_dir(const std::string& dir, const std::string& flag, uint64_t bytes_needed) {
  std::error_code ec;
  fs::path d = fs::path(dir);
  TG_CHECK(!fs::exists(d, ec) || fs::is_directory(d, ec), "{}: {} exists and is not a directory", flag, dir);
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
