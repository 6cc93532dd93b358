#pragma once
// TG_UNROLL_WHOLE before a loop of a register-blocked kernel (a fixed, small trip count over the
// block's rows or vectors): unroll it whole. GCC keeps a block's accumulator array in registers
// only when every loop over it is unrolled (left to itself it kept tile_gemm's 24 accumulators
// on the stack around the K loop: 72 extra stores a block). Clang builds only the sanitizer and
// fuzzing configurations here (-O1), where the forced unrolling made attention_tile.cpp's
// compile 2.6x longer (11 -> 29 s) for speed that does not count, so it gets no pragma.
#if defined(__clang__)
#define TG_UNROLL_WHOLE
#else
#define TG_UNROLL_WHOLE _Pragma("GCC unroll 16")
#endif
