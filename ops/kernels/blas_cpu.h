#pragma once
// Which OpenBLAS kernels run. A dynamic-arch OpenBLAS picks its kernels by CPU model when it is
// loaded; a model newer than its table (Debian 12's 0.3.21 on recent Xeons) falls back to the
// "Prescott" SSE3 kernels, about 3x slower than the AVX2 ones on the same cores (sgemm [1024]²,
// measured 9 vs 30 GFLOP/s). Newer OpenBLAS releases choose by CPU features instead; the
// programs of tapegrad do the same through OPENBLAS_CORETYPE, which OpenBLAS reads only while it
// is being loaded: hence a re-exec of the program, before it has done anything.
namespace tg::kernels {

/// The kernel set OpenBLAS runs ("Haswell", "SkylakeX", "Prescott", ...).
const char* blas_core_name();

/// The OpenBLAS core type this CPU's features allow ("SkylakeX" with AVX-512 F/BW/DQ/VL,
/// "Haswell" with AVX2 and FMA), or nullptr when none is better than what OpenBLAS chose.
const char* better_blas_core();

/// True when OpenBLAS runs AVX-512 kernels (SkylakeX, Cooperlake, SapphireRapids): its sgemm then
/// outruns the eight-lane register tiles of attention_tile.h (kernels choosing between the two
/// ask this; see attention_flash.cpp).
bool blas_kernels_are_avx512();

/// Call first thing in main(argv). When OPENBLAS_CORETYPE is unset and OpenBLAS fell back to
/// generic kernels that this CPU can beat, sets OPENBLAS_CORETYPE to better_blas_core() and
/// re-executes the program (/proc/self/exe, the same argv and environment otherwise); returns
/// only when no re-exec is needed or it failed (then the program runs on as it is). A set
/// OPENBLAS_CORETYPE is never overridden: it is how a user asks for a kernel set.
void use_best_blas_kernels(char** argv);

}  // namespace tg::kernels
