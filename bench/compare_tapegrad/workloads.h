#pragma once
// bench/compare's tapegrad side: each workload of the side-by-side comparison, run through
// tapegrad's public C++ API. A request (JSON, from bench/compare) names the workload and its
// sizes; the reply holds the time of each timed step, in seconds, and what the driver checks
// (parameter count, first and last loss). The PyTorch and JAX scripts answer the same requests.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace tg::nn {
class Module;
}
namespace tg::models {
class CausalLM;
}

namespace tg::compare {

using json = nlohmann::json;

/// What one request asks: `warmup` untimed steps, then `steps` timed ones; a timed step of a
/// small op repeats it `inner` times and reports the time per repetition.
struct Request {
  std::string workload;  ///< gpt_train, encoder_train, generate, llama_train, mha, layer_norm, softmax, ...
  json config;           ///< the workload's sizes (see bench/compare_py/workloads.py)
  int64_t warmup = 2, steps = 10, inner = 1;
  int threads = 0;  ///< tg::set_num_threads for this request; 0 = all cores
  /// Train workloads: after the timed steps, one more measured by rss_peak_growth (the driver
  /// asks this last, after all timing: it changes malloc's settings).
  bool memory = false;
};

/// step_s: seconds per timed step; the other fields are set where they mean something.
struct Reply {
  std::vector<double> step_s;
  int64_t params = 0;             ///< parameter count of the model (0 for single ops)
  double loss_first = 0, loss_last = 0;  ///< first warm-up step's loss, last timed step's
  bool has_loss = false;
  int64_t peak_bytes = 0;         ///< allocator peak during the timed steps (above what was live before)
  int64_t rss_peak_bytes = 0;     ///< resident-set high-water growth of one extra, untimed step (0: not measured)
  json extra = json::object();    ///< workload-specific facts (e.g. the attention kernel used)
};

/// Parses a request line; tg::Error naming the field that is missing or wrong.
Request parse_request(const json& j);
/// Runs one request (tg::Error for an unknown workload or a bad size).
Reply run_request(const Request& request);
json to_json(const Reply& reply);

// --- the workloads (workloads_train.cpp, workloads_llama.cpp, workloads_kernels.cpp, ...) ------
Reply run_gpt_train(const Request& r);
Reply run_encoder_train(const Request& r);
Reply run_generate(const Request& r);
Reply run_llama_train(const Request& r);     ///< a Llama-shaped decoder's train step (workloads_llama.cpp)
Reply run_llama_generate(const Request& r);  ///< generation with it
Reply run_mha(const Request& r);
Reply run_single_op(const Request& r);  ///< layer_norm, softmax, gelu, cross_entropy
Reply run_adamw_step(const Request& r);
Reply run_sgemm_peak(const Request& r);
Reply run_linear_gemms(const Request& r);  ///< a training step's linear-layer GEMMs alone
Reply run_attention(const Request& r);     ///< one attention kernel, forward (+ backward)
Reply run_flex_attention(const Request& r);  ///< flex_attention with a ready pattern (workloads_flex.cpp)

// --- helpers of the model workloads (workloads_train.cpp) -------------------------------------
/// x [B, T] i64 token ids; y [B, T] i64 (each position's next token) or [B] i64 (class labels).
struct TrainBatch {
  Tensor x, y;
};
/// The file of config "data" as char ids (its sorted distinct bytes, nanoGPT's shakespeare_char).
std::vector<int64_t> text_tokens(const Request& r);
/// `count` batches of B rows of T ids, built as bench/compare_py/data.py's gpt_batches.
std::vector<TrainBatch> gpt_batches(const std::vector<int64_t>& tokens, int64_t count, int64_t B, int64_t T);
/// r.warmup + r.steps train steps of `model` (zero_grad, loss_of_step(i), backward, clip at
/// config grad_clip, AdamW as the references run it), the timed ones timed; every step's loss and
/// pre-clip gradient norm in extra["losses"] / ["grad_norms"].
Reply train_steps(const Request& r, nn::Module& model, const std::function<Tensor(int64_t)>& loss_of_step);
/// r.warmup + r.steps calls of models::generate (new_tokens tokens from a one-token prompt, batch
/// 1, temperature 1), each call one step.
Reply generate_steps(const Request& r, models::CausalLM& model, int64_t new_tokens, bool kv_cache);

// --- helpers shared by the workloads ----------------------------------------------------------
/// Seconds since `start`.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
/// Times r.steps samples after r.warmup untimed ones; each sample runs `step` r.inner times and
/// records the time per run. peak_bytes: the allocator's peak over the timed samples above what
/// was live before them; with r.memory, rss_peak_bytes of one more, untimed run.
Reply time_steps(const Request& r, const std::function<void()>& step);
/// How far the process's resident set (VmHWM) rose above where it was (VmRSS) while `fn` ran,
/// in bytes, with tapegrad's cached blocks given back and malloc set to return freed memory
/// (as the PyTorch and JAX workers are measured: bench/compare_py/worker.py). 0 where /proc
/// cannot say.
int64_t rss_peak_growth(const std::function<void()>& fn);
/// A required integer / number / string of the request's config, with a clear error.
int64_t config_int(const Request& r, const char* key);
double config_double(const Request& r, const char* key, double fallback);
std::string config_string(const Request& r, const char* key, const std::string& fallback);

}  // namespace tg::compare
