#include "nn/file_checks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "autograd/error.h"

namespace tg {
namespace fs = std::filesystem;
namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::string describe_path_error(int err) {
  switch (err) {
    case ELOOP: return "too many levels of symbolic links (a symlink loop?)";
    case ENOENT: return "no such file or directory";
    case EACCES: return "permission denied";
    case EROFS: return "read-only file system";
    case ENOSPC: return "no space left on the device";
    case EDQUOT: return "disk quota exceeded";
    case ENOTDIR: return "a component of the path is not a directory";
    case ENAMETOOLONG: return "the path is too long";
    default: return std::strerror(err);
  }
}

namespace {

// The status of `path` as opening it for reading finds it (symlinks followed; O_NONBLOCK, so a
// FIFO does not wait for a writer); tg::Error "{lead}cannot read {what}PATH: why" otherwise.
struct stat stat_by_opening(const std::string& path, const std::string& lead, const char* what) {
  TG_CHECK(!path.empty(), "{}the path is empty", lead);
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  TG_CHECK(fd >= 0, "{}cannot read {}{}: {}", lead, what, path, describe_path_error(errno));
  struct stat st {};
  int rc = ::fstat(fd, &st);
  int err = errno;
  ::close(fd);
  TG_CHECK(rc == 0, "{}cannot read {}{}: {}", lead, what, path, describe_path_error(err));
  return st;
}

}  // namespace

void check_input_file(const std::string& path, const std::string& flag) {
  const std::string lead = flag.empty() ? std::string() : flag + ": ";
  struct stat st = stat_by_opening(path, lead, "");
  TG_CHECK(S_ISREG(st.st_mode), "{}cannot read {}: it is {}, not a regular file", lead, path, kind_of(st.st_mode));
}

void check_input_dir(const std::string& path, const std::string& flag) {
  struct stat st = stat_by_opening(path, flag + ": ", "the directory ");
  TG_CHECK(S_ISDIR(st.st_mode), "{}: {} is {}, not a checkpoint directory", flag, path,
           S_ISREG(st.st_mode) ? "a file" : kind_of(st.st_mode));
  TG_CHECK(::access(path.c_str(), R_OK | X_OK) == 0, "{}: cannot read the directory {}: {}", flag, path,
           describe_path_error(errno));
}

bool same_or_inside(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  std::error_code ec;
  const fs::path pa = fs::weakly_canonical(fs::absolute(a, ec), ec);
  if (ec) return false;
  const fs::path pb = fs::weakly_canonical(fs::absolute(b, ec), ec);
  if (ec) return false;
  // pb's elements must begin pa's (an empty last element is a trailing separator).
  auto ia = pa.begin();
  for (const fs::path& element : pb) {
    if (element.empty()) break;
    if (ia == pa.end() || *ia != element) return false;
    ++ia;
  }
  return true;
}

void check_output_file(const std::string& path, const std::string& flag) {
  TG_CHECK(!path.empty(), "{}: the path is empty", flag);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    TG_CHECK(S_ISREG(st.st_mode), "{}: cannot write {}: it is {}; give a file name", flag, path, kind_of(st.st_mode));
  } else {
    TG_CHECK(errno == ENOENT, "{}: cannot write {}: {}", flag, path, describe_path_error(errno));
  }
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  struct stat ps {};
  TG_CHECK(::stat(parent.c_str(), &ps) == 0, "{}: cannot write {}: its directory {}: {}", flag, path, parent.string(),
           describe_path_error(errno));
  TG_CHECK(S_ISDIR(ps.st_mode), "{}: cannot write {}: {} is not a directory", flag, path, parent.string());
  // A probe beside the file: files are written to a temporary name there and renamed into place.
  const std::string probe = (parent / fmt::format(".tapegrad-probe-{}", long(getpid()))).string();
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  TG_CHECK(fd >= 0, "{}: cannot write {}: cannot create files in {}: {}", flag, path, parent.string(),
           describe_path_error(errno));
  bool ok = ::write(fd, "p", 1) == 1;
  int err = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok && err == 0) err = errno;
  ::unlink(probe.c_str());
  TG_CHECK(ok, "{}: cannot write {}: {}", flag, path, describe_path_error(err));
}

}  // namespace tg
