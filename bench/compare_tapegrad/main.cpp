// compare_tapegrad: bench/compare's tapegrad worker. Reads one JSON request per line on stdin
// ({"workload": "gpt_train", "config": {...}, "warmup": 2, "steps": 10}), runs it, and writes
// one JSON reply per line on stdout ({"step_s": [...], "params": ..., ...} or {"error": "..."}).
// Start-up and warm-up steps are outside the timed steps.
#include <iostream>
#include <string>

#include "bench/compare_tapegrad/workloads.h"
#include "ops/kernels/blas_cpu.h"

int main(int, char** argv) {
  tg::kernels::use_best_blas_kernels(argv);
  using tg::compare::json;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json reply;
    try {
      json request = json::parse(line);
      reply = tg::compare::to_json(tg::compare::run_request(tg::compare::parse_request(request)));
    } catch (const std::exception& e) {  // tg::Error or a JSON parse error: reported, not fatal
      reply = json{{"error", e.what()}};
    }
    std::cout << reply.dump() << std::endl;
  }
  return 0;
}
