#pragma once
// Helpers shared by the tests: random inputs, closeness checks, gradcheck assertions.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "tapegrad.h"

namespace tg::testing {

/// Uniform in [lo, hi) from a fixed seed, f64 unless asked.
inline Tensor uniform(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                      DType dtype = DType::f64) {
  Generator gen(seed);
  Tensor u = rand(shape, gen, DType::f64);
  double* p = u.data<double>();
  for (int64_t i = 0; i < u.numel(); ++i) p[i] = lo + (hi - lo) * p[i];
  return u.to(dtype);
}

/// Largest |a - b| over all elements; shapes must match.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) {
    double d = std::fabs(va[i] - vb[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

/// Largest |x|.
inline double max_abs(const Tensor& a) {
  double m = 0;
  for (double v : a.to_vector()) m = std::max(m, std::fabs(v));
  return m;
}

/// Expects a and b equal within atol + rtol * max|b|.
inline void expect_close(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-6) {
  ASSERT_TRUE(a.defined() && b.defined());
  ASSERT_EQ(a.shape(), b.shape()) << "shapes " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  double tol = atol + rtol * max_abs(b);
  EXPECT_LE(max_abs_diff(a, b), tol) << "a = " << a << "\nb = " << b;
}

/// Runs gradcheck quietly and expects it to pass, printing its summary on failure.
inline void expect_gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                             GradcheckOptions options = {}) {
  options.verbose = false;
  GradcheckResult r = gradcheck(f, inputs, options);
  EXPECT_TRUE(r.passed) << r.summary();
  EXPECT_GT(r.checked, 0) << "gradcheck compared nothing";
}

/// A fresh directory under the system's temp dir, removed (read-only parts included) at the end.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name = "tmp") {
    static int n = 0;
    path = std::filesystem::temp_directory_path() / fmt::format("tapegrad-{}-{}-{}", name, ::getpid(), n++);
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
      if (it->is_directory(ec)) std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// The path of `name` inside the directory.
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string operator/(const char* name) const { return file(name); }
};

/// Expects `statement` to throw tg::Error whose message contains `needle`.
#define EXPECT_TG_ERROR(statement, needle)                                              \
  do {                                                                                  \
    try {                                                                               \
      statement;                                                                        \
      ADD_FAILURE() << "expected tg::Error containing \"" << (needle) << "\"";          \
    } catch (const ::tg::Error& e) {                                                    \
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();     \
    }                                                                                   \
  } while (0)

/// Every file under `root` (relative path -> bytes) and every folder (path + "/" -> ""), to check
/// that something left a tree byte for byte as it was.
inline std::map<std::string, std::string> snapshot(const std::filesystem::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    std::string rel = std::filesystem::relative(e.path(), root).string();
    if (e.is_directory()) {
      files[rel + "/"] = "";
    } else {
      std::ifstream in(e.path(), std::ios::binary);
      files[rel] = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  return files;
}

}  // namespace tg::testing
