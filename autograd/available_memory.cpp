#include "autograd/available_memory.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "autograd/error.h"

namespace tg {
namespace {

std::string read_small_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The value in kB of the line "key:   1234 kB" of a /proc file, in bytes.
std::optional<int64_t> kb_field(std::string_view text, std::string_view key) {
  size_t at = 0;
  while ((at = text.find(key, at)) != std::string_view::npos) {
    if ((at == 0 || text[at - 1] == '\n') && at + key.size() < text.size() && text[at + key.size()] == ':') {
      std::string rest(text.substr(at + key.size() + 1, 40));
      char* end = nullptr;
      long long kb = std::strtoll(rest.c_str(), &end, 10);
      if (end == rest.c_str() || kb < 0 || kb > INT64_MAX / 1024) return std::nullopt;
      return int64_t(kb) * 1024;
    }
    at += key.size();
  }
  return std::nullopt;
}

}  // namespace

std::optional<int64_t> parse_meminfo_available(std::string_view meminfo) {
  return kb_field(meminfo, "MemAvailable");
}

std::optional<AvailableMemory> available_memory() {
  std::optional<AvailableMemory> out;
  if (std::optional<int64_t> avail = parse_meminfo_available(read_small_file("/proc/meminfo")))
    out = AvailableMemory{*avail, "MemAvailable in /proc/meminfo"};
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const int64_t cap = limit.rlim_cur > rlim_t(INT64_MAX) ? INT64_MAX : int64_t(limit.rlim_cur);
    const int64_t mapped = kb_field(read_small_file("/proc/self/status"), "VmSize").value_or(0);
    const int64_t left = cap > mapped ? cap - mapped : 0;
    if (!out || left < out->bytes)
      out = AvailableMemory{left, fmt::format("RLIMIT_AS of {} less the {} mapped", format_gb(double(cap)),
                                              format_gb(double(mapped)))};
  }
  return out;
}

std::string format_gb(double bytes) {
  return bytes < 1e17 ? fmt::format("{:.2f} GB", bytes / 1e9) : fmt::format("{:.3g} GB", bytes / 1e9);
}

void check_memory_fits(double needed_bytes, const AvailableMemory& available, std::string_view what) {
  TG_CHECK(needed_bytes <= double(available.bytes), "{} needs about {}, more than the {} available ({})", what,
           format_gb(needed_bytes), format_gb(double(available.bytes)), available.source);
}

void check_memory_fits(double needed_bytes, std::string_view what) {
  if (std::optional<AvailableMemory> available = available_memory())
    check_memory_fits(needed_bytes, *available, what);
}

}  // namespace tg
