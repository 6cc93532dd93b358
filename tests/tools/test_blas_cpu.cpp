// The tapegrad program runs OpenBLAS's best kernels for this CPU (ops/kernels/blas_cpu.h): with
// OPENBLAS_CORETYPE unset, a CPU whose model OpenBLAS does not know still gets its AVX2 or
// AVX-512 kernels (through a re-exec), and a set OPENBLAS_CORETYPE is left as the user asked.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ops/kernels/blas_cpu.h"

namespace tg {
namespace {

// `tapegrad --version`'s output, with OPENBLAS_CORETYPE set to `coretype` (unset when null).
std::string version_line(const char* coretype) {
  std::string cmd = coretype ? std::string("env OPENBLAS_CORETYPE=") + coretype + " " : "env -u OPENBLAS_CORETYPE ";
  cmd += std::string(TAPEGRAD_BIN) + " --version";
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 256> buf{};
  while (pipe && fgets(buf.data(), int(buf.size()), pipe)) out += buf.data();
  if (pipe) {
    EXPECT_EQ(pclose(pipe), 0) << cmd;
  }
  return out;
}

TEST(BlasCpu, TheProgramRunsTheBestKernelsThisCpuAllows) {
  // This test process has the kernels OpenBLAS chose (or the ones OPENBLAS_CORETYPE names).
  const char* here = kernels::blas_core_name();
  const char* better = std::getenv("OPENBLAS_CORETYPE") ? nullptr : kernels::better_blas_core();
  std::string expected = std::string("OpenBLAS kernels: ") + (better ? better : here);
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    EXPECT_NE(version_line(nullptr).find(expected), std::string::npos) << version_line(nullptr);
  }
  // A kernel set the user names is kept, even a slower one.
  EXPECT_NE(version_line("Prescott").find("OpenBLAS kernels: Prescott"), std::string::npos)
      << version_line("Prescott");
}

TEST(BlasCpu, BetterCoreIsOnlyOfferedOverAFallback) {
  const std::string here = kernels::blas_core_name();
  if (here != "Prescott" && here != "Core2" && here != "Nehalem" && here != "Sandybridge") {
    EXPECT_EQ(kernels::better_blas_core(), nullptr) << here;
  }
}

}  // namespace
}  // namespace tg
