// `tapegrad gradcheck [--op NAME]... [--threads N]`: runs every op of the catalogue through the
// f64 finite-difference gradcheck and prints a table; exits 1 when any op fails.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "tools/cli/commands.h"
#include "tools/gradcheck/catalogue.h"

namespace tg::cli {
namespace {

struct GradcheckArgs {
  std::vector<std::string> ops;
  int threads = 0;
};

int run_gradcheck(const GradcheckArgs& args) {
  if (args.threads > 0) set_num_threads(args.threads);
  std::vector<catalogue::OpCase> cases = catalogue::all_cases();
  if (cases.empty()) {
    fmt::print(stderr, "tapegrad gradcheck: the op catalogue is empty (no family registered)\n");
    return 2;
  }
  if (!args.ops.empty()) {
    std::erase_if(cases, [&](const catalogue::OpCase& c) {
      return std::find(args.ops.begin(), args.ops.end(), c.op) == args.ops.end();
    });
    if (cases.empty()) {
      fmt::print(stderr, "tapegrad gradcheck: no op named {} in the catalogue\n",
                 fmt::join(args.ops, ", "));
      return 2;
    }
  }
  size_t op_w = 2, shape_w = 6;
  for (const auto& c : cases) {
    op_w = std::max(op_w, c.op.size());
    shape_w = std::max(shape_w, c.shapes.size());
  }
  fmt::print("{:<{}}  {:<{}}  {:>13}  {:>13}  {}\n", "op", op_w, "shapes", shape_w, "max abs err",
             "max rel err", "result");
  int failed = 0;
  auto start = std::chrono::steady_clock::now();
  for (const auto& c : cases) {
    GradcheckOptions opts = c.options;
    opts.verbose = false;
    std::string result;
    GradcheckResult r;
    try {
      r = gradcheck(c.fn, c.inputs, opts);
      result = r.passed ? "pass" : "FAIL  " + r.summary();
    } catch (const std::exception& e) {
      r.passed = false;
      result = fmt::format("FAIL  threw: {}", e.what());
    }
    failed += !r.passed;
    fmt::print("{:<{}}  {:<{}}  {:>13.3e}  {:>13.3e}  {}\n", c.op, op_w, c.shapes, shape_w,
               r.max_abs.error, r.max_rel.error, result);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{} cases in {:.2f} s, f64 central differences over the full Jacobian\n", cases.size(),
             secs);
  fmt::print("gradcheck: {} passed, {} failed\n", cases.size() - failed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace

void add_gradcheck_command(CLI::App& app) {
  auto args = std::make_shared<GradcheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "gradcheck", "Check every op's gradient against central finite differences in f64");
  cmd->add_option("--op", args->ops, "Only these ops (repeatable), e.g. --op matmul --op gelu");
  cmd->add_option("--threads", args->threads, "Threads for TBB and OpenBLAS (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([args] { throw CLI::RuntimeError(run_gradcheck(*args)); });
}

}  // namespace tg::cli
