#pragma once
// How much memory this process can still take, and the one check every size estimate goes
// through before a model, a data set or a bench cell is built: too much is refused up front
// with a tg::Error, never attempted (an attempt ends in the OOM killer's signal, not an error).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tg {

struct AvailableMemory {
  int64_t bytes = 0;   ///< what can still be allocated
  std::string source;  ///< where it comes from: "MemAvailable in /proc/meminfo" or "RLIMIT_AS of .. less the .. mapped"
};

/// The smaller of /proc/meminfo's MemAvailable and, when RLIMIT_AS is set, the limit minus what
/// the process maps already (VmSize in /proc/self/status); std::nullopt when neither is known
/// (not Linux), in which case nothing is refused.
std::optional<AvailableMemory> available_memory();

/// MemAvailable of a /proc/meminfo text in bytes, or std::nullopt when the line is missing.
std::optional<int64_t> parse_meminfo_available(std::string_view meminfo);

/// "1.50 GB" (GB = 10^9 bytes), for messages.
std::string format_gb(double bytes);

/// Throws tg::Error when `needed_bytes` (an estimate; a double so that no product of sizes
/// overflows on the way) exceeds `available`: "{what} needs about 12.3 GB, more than the 7.9 GB
/// available (MemAvailable in /proc/meminfo)". `what` names the flags or the file that set the sizes.
void check_memory_fits(double needed_bytes, const AvailableMemory& available, std::string_view what);
/// The same against available_memory(); does nothing when that is unknown.
void check_memory_fits(double needed_bytes, std::string_view what);

}  // namespace tg
