// Requests and replies of bench/compare's tapegrad worker, and the dispatch to the workloads.
#include <malloc.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "autograd/allocator.h"

#include "autograd/error.h"
#include "bench/compare_tapegrad/workloads.h"
#include "ops/kernels/parallel.h"

namespace tg::compare {

Request parse_request(const json& j) {
  TG_CHECK(j.is_object(), "compare_tapegrad: a request must be a JSON object, got {}", j.dump());
  TG_CHECK(j.contains("workload") && j["workload"].is_string(), "compare_tapegrad: request without a \"workload\" name");
  Request r;
  r.workload = j["workload"].get<std::string>();
  r.config = j.value("config", json::object());
  TG_CHECK(r.config.is_object(), "compare_tapegrad: {}: \"config\" must be an object", r.workload);
  auto count = [&](const char* key, int64_t fallback, int64_t min) {
    int64_t v = fallback;
    if (j.contains(key)) {
      TG_CHECK(j[key].is_number_integer(), "compare_tapegrad: {}: \"{}\" must be an integer", r.workload, key);
      v = j[key].get<int64_t>();
    }
    TG_CHECK(v >= min, "compare_tapegrad: {}: \"{}\" must be at least {}, got {}", r.workload, key, min, v);
    return v;
  };
  r.warmup = count("warmup", r.warmup, 0);
  r.steps = count("steps", r.steps, 1);
  r.inner = count("inner", r.inner, 1);
  r.threads = int(count("threads", 0, 0));
  r.memory = j.value("memory", false);
  return r;
}

int64_t config_int(const Request& r, const char* key) {
  TG_CHECK(r.config.contains(key) && r.config[key].is_number_integer(),
           "compare_tapegrad: {}: config \"{}\" (an integer) is required", r.workload, key);
  int64_t v = r.config[key].get<int64_t>();
  TG_CHECK(v > 0, "compare_tapegrad: {}: config \"{}\" must be positive, got {}", r.workload, key, v);
  return v;
}

double config_double(const Request& r, const char* key, double fallback) {
  if (!r.config.contains(key)) return fallback;
  TG_CHECK(r.config[key].is_number(), "compare_tapegrad: {}: config \"{}\" must be a number", r.workload, key);
  return r.config[key].get<double>();
}

std::string config_string(const Request& r, const char* key, const std::string& fallback) {
  if (!r.config.contains(key)) return fallback;
  TG_CHECK(r.config[key].is_string(), "compare_tapegrad: {}: config \"{}\" must be a string", r.workload, key);
  return r.config[key].get<std::string>();
}

namespace {
// A field of /proc/self/status in bytes ("VmRSS", "VmHWM"); -1 when absent.
int64_t status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream value(line.substr(field.size() + 1));
      int64_t kb = -1;
      value >> kb;
      return kb * 1024;
    }
  return -1;
}
}  // namespace

int64_t rss_peak_growth(const std::function<void()>& fn) {
  // Large blocks from mmap and freed ones trimmed, so that what is freed leaves the resident set.
  mallopt(M_MMAP_THRESHOLD, 64 << 10);
  mallopt(M_TRIM_THRESHOLD, 64 << 10);
  empty_cache();
  malloc_trim(0);
  bool reset = bool(std::ofstream("/proc/self/clear_refs") << "5");  // VmHWM := VmRSS (Linux >= 4.0)
  const int64_t before = status_bytes("VmRSS");
  fn();
  const int64_t hwm = status_bytes("VmHWM");
  return reset && before >= 0 && hwm >= before ? hwm - before : 0;
}

Reply time_steps(const Request& r, const std::function<void()>& step) {
  Reply reply;
  int64_t live = 0;
  for (int64_t i = 0; i < r.warmup + r.steps; ++i) {
    if (i == r.warmup) reset_peak_memory_stats(), live = memory_allocated();
    auto start = std::chrono::steady_clock::now();
    for (int64_t k = 0; k < r.inner; ++k) step();
    if (i >= r.warmup) reply.step_s.push_back(seconds_since(start) / double(r.inner));
  }
  reply.peak_bytes = max_memory_allocated() - live;
  if (r.memory) reply.rss_peak_bytes = rss_peak_growth(step);
  return reply;
}

Reply run_request(const Request& r) {
  set_num_threads(r.threads > 0 ? r.threads : int(std::max(1u, std::thread::hardware_concurrency())));
  if (r.workload == "gpt_train") return run_gpt_train(r);
  if (r.workload == "encoder_train") return run_encoder_train(r);
  if (r.workload == "generate") return run_generate(r);
  if (r.workload == "llama_train") return run_llama_train(r);
  if (r.workload == "llama_generate") return run_llama_generate(r);
  if (r.workload == "mha") return run_mha(r);
  if (r.workload == "layer_norm" || r.workload == "softmax" || r.workload == "gelu" || r.workload == "cross_entropy")
    return run_single_op(r);
  if (r.workload == "adamw_step") return run_adamw_step(r);
  if (r.workload == "sgemm_peak") return run_sgemm_peak(r);
  if (r.workload == "linear_gemms") return run_linear_gemms(r);
  if (r.workload == "attention") return run_attention(r);
  if (r.workload == "flex_attention") return run_flex_attention(r);
  fail("compare_tapegrad: unknown workload '{}' (gpt_train, encoder_train, generate, llama_train, llama_generate, "
       "mha, layer_norm, softmax, gelu, cross_entropy, adamw_step, sgemm_peak, linear_gemms, attention, "
       "flex_attention)",
       r.workload);
}

json to_json(const Reply& reply) {
  json j{{"step_s", reply.step_s}, {"params", reply.params}, {"peak_bytes", reply.peak_bytes},
         {"rss_peak_bytes", reply.rss_peak_bytes}, {"threads", get_num_threads()}, {"extra", reply.extra}};
  if (reply.has_loss) j["loss_first"] = reply.loss_first, j["loss_last"] = reply.loss_last;
  return j;
}

}  // namespace tg::compare
