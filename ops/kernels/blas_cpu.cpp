#include "ops/kernels/blas_cpu.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

extern "C" char* openblas_get_corename(void);

namespace tg::kernels {

const char* blas_core_name() { return openblas_get_corename(); }

const char* better_blas_core() {
  // The generic kernels a dynamic-arch build falls back to for a model it does not know.
  const char* core = blas_core_name();
  bool fallback = core && (std::strcmp(core, "Prescott") == 0 || std::strcmp(core, "Core2") == 0 ||
                           std::strcmp(core, "Nehalem") == 0 || std::strcmp(core, "Sandybridge") == 0);
  if (!fallback) return nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

bool blas_kernels_are_avx512() {
  static const bool avx512 = [] {
    const char* core = blas_core_name();
    return core && (std::strcmp(core, "SkylakeX") == 0 || std::strcmp(core, "Cooperlake") == 0 ||
                    std::strcmp(core, "SapphireRapids") == 0);
  }();
  return avx512;
}

void use_best_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || argv == nullptr) return;
  const char* core = better_blas_core();
  if (!core) return;
  // Set even when the exec fails: no second attempt, and child processes inherit the choice.
  if (setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
  execv("/proc/self/exe", argv);
}

}  // namespace tg::kernels
