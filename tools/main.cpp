// `tapegrad`: the one command. Subcommands live in tools/cli/; tools/cli/run.cpp assembles them.
#include "ops/kernels/blas_cpu.h"
#include "tools/cli/run.h"

int main(int argc, char** argv) {
  tg::kernels::use_best_blas_kernels(argv);
  return tg::cli::run(argc, argv);
}
