#pragma once
// Tells ThreadSanitizer what an uninstrumented library (OpenBLAS) reads and writes, so a race
// between two threads on a matrix passed to it is reported like one in tapegrad's own loops.
// No-ops unless built with -fsanitize=thread (tools/tsan.sh).
#include <cstdint>

#if defined(__SANITIZE_THREAD__)
#define TG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TG_TSAN 1
#endif
#endif

#ifdef TG_TSAN
extern "C" void __tsan_read_range(void* addr, unsigned long size);
extern "C" void __tsan_write_range(void* addr, unsigned long size);
#endif

namespace tg::kernels {

/// Declares a read (write = false) or a write of a row-major [rows, cols] matrix with leading
/// dimension ld, as if this thread accessed every element now.
template <class T>
inline void tsan_matrix_access([[maybe_unused]] const T* p, [[maybe_unused]] int64_t rows,
                               [[maybe_unused]] int64_t cols, [[maybe_unused]] int64_t ld,
                               [[maybe_unused]] bool write) {
#ifdef TG_TSAN
  auto* base = const_cast<T*>(p);
  auto bytes = static_cast<unsigned long>(cols) * sizeof(T);
  for (int64_t r = 0; r < rows; ++r)
    (write ? __tsan_write_range : __tsan_read_range)(base + r * ld, bytes);
#endif
}

}  // namespace tg::kernels
