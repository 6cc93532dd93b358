#include "models/training/train_loop.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <vector>

#include "autograd/backward.h"
#include "autograd/error.h"
#include "autograd/tape.h"
#include "models/training/progress.h"
#include "nn/optim/clip_grad.h"
#include "nn/parallel/process_group.h"

namespace tg {
namespace {

std::atomic<bool> interrupt_requested{false};
void on_sigint(int) { interrupt_requested.store(true); }

// Installs the Ctrl-C handler for the loop's duration and restores the previous one after.
struct SigintScope {
  using Handler = void (*)(int);
  Handler previous;
  SigintScope() : previous(std::signal(SIGINT, on_sigint)) { interrupt_requested.store(false); }
  ~SigintScope() { std::signal(SIGINT, previous); }
};

// The CSV log: a header when the file is new, one flushed row per step.
class CsvLog {
 public:
  explicit CsvLog(const std::string& path) : path_(path) {
    if (path.empty()) return;
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);  // ec: a new file
    bool fresh = ec || size == 0;
    out_.open(path, std::ios::app);
    TG_CHECK(out_.good(), "`log`: cannot open {} for writing", path);
    if (fresh) out_ << "step,loss,lr,tokens_per_s,val_loss\n";
  }
  void row(int64_t step, double loss, double lr, double tokens_per_s, std::optional<double> val) {
    if (!out_.is_open()) return;
    out_ << fmt::format("{},{:.6f},{:.6g},{:.1f},{}\n", step, loss, lr, tokens_per_s, val ? fmt::format("{:.6f}", *val) : "");
    out_.flush();
    // A full disk must not lose the log silently.
    TG_CHECK(out_.good(), "`log`: writing {} failed at step {} (disk full?)", path_, step);
  }

 private:
  std::string path_;
  std::ofstream out_;
};

std::string rate_str(double r, const std::string& name) {
  return r >= 1e4 ? fmt::format("{:.1f}k {}/s", r / 1e3, name) : fmt::format("{:.0f} {}/s", r, name);
}

double evaluate(nn::Module& model, TrainingTask& task) {
  bool was_training = model.is_training();
  model.eval();
  double v;
  {
    NoGradGuard no_grad;
    v = task.evaluate();
  }
  model.train(was_training);
  return v;
}

// Data-parallel: the mean of every rank's loss, and whether any rank was interrupted, so that
// all ranks log the same loss and stop at the same step.
double agree_over_ranks(double loss, double timeout_s) {
  Tensor t = tensor({loss, interrupt_requested.load() ? 1.0 : 0.0}, {2}, DType::f64);
  distributed::all_reduce_async(t).wait(timeout_s, "the all-reduce of the step's loss");
  if (t.data<double>()[1] > 0) interrupt_requested.store(true);
  return t.data<double>()[0] / double(distributed::get_world_size());
}

}  // namespace

TrainLoopResult run_train_loop(nn::Module& model, optim::Optimizer& opt, const models::OptimOptions& o,
                               TrainingTask& task, int64_t start_step, bool distributed) {
  TG_CHECK(o.max_iters >= 0, "train: `max_iters` must be >= 0, got {}", o.max_iters);
  TG_CHECK(start_step >= 0 && start_step <= o.max_iters, "train: resuming at step {} beyond `max_iters` {}", start_step,
           o.max_iters);
  const optim::LRSchedule schedule = o.schedule();
  schedule.validate();
  SigintScope sigint;
  const bool rank0 = !distributed || distributed::get_rank() == 0;
  CsvLog log(rank0 ? o.log : "");
  std::optional<ProgressBar> bar;
  if (o.progress && rank0) bar.emplace(o.max_iters);
  TrainLoopResult result;
  result.steps_done = start_step;
  std::vector<double> rates;
  std::vector<Tensor> params = model.parameters();
  model.train();
  // The step of the last checkpoint written (or resumed from): what a failure leaves on disk.
  std::string last_saved = start_step > 0 ? fmt::format("step {}", start_step) : "none yet";
  auto save = [&](int64_t step) {
    if (rank0) task.save_checkpoint(step);
    last_saved = fmt::format("step {}", step);
  };

  for (int64_t step = start_step; step < o.max_iters; ++step) {
    auto t0 = std::chrono::steady_clock::now();
    double lr = schedule.at(step);
    opt.set_lr(lr);
    Tensor loss = task.loss_on_next_batch();
    double loss_value = distributed ? agree_over_ranks(loss.item(), o.dist_timeout) : loss.item();
    if (!std::isfinite(loss_value)) {
      if (bar) bar->finish();
      fail("train: the loss became {} at step {}; stopped, the last checkpoint ({}) is kept (try a lower `lr`, "
           "`grad_clip`, or `detect_anomaly` to name the op)",
           loss_value, step, last_saved);
    }
    opt.zero_grad();
    backward(loss);
    loss = Tensor();
    if (o.grad_clip > 0) optim::clip_grad_norm_(params, o.grad_clip);
    opt.step();
    double secs = std::max(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1e-9);
    double rate = double(task.items_per_step()) / secs;
    double tokens = double(task.tokens_in_last_batch());
    rates.push_back(rate);
    result.last_loss = loss_value;

    bool last = step + 1 == o.max_iters;
    std::optional<double> val;
    if ((o.eval_interval > 0 && (step + 1) % o.eval_interval == 0) || last) {
      val = evaluate(model, task);
      if (!std::isfinite(*val)) {
        if (bar) bar->finish();
        fail("train: the validation loss became {} after step {}; stopped without saving, the last checkpoint ({}) "
             "is kept (try a lower `lr`, `grad_clip`, or `detect_anomaly` to name the op)",
             *val, step + 1, last_saved);
      }
      result.last_val_loss = val;
    }
    log.row(step, loss_value, lr, tokens / secs, val);
    result.steps_done = step + 1;
    if (bar) {
      bar->update(step + 1, fmt::format("loss {:.4f} | {}", loss_value, rate_str(rate, task.items_name())));
      if (val) {
        const std::string summary = task.eval_summary();
        bar->note(fmt::format("step {}: train loss {:.4f}, val loss {:.4f}{}", step + 1, loss_value, *val,
                              summary.empty() ? "" : ", " + summary));
      }
    }
    if (val) save(step + 1);
    if (interrupt_requested.load()) {
      if (!val) save(step + 1);
      result.interrupted = true;
      if (bar) bar->note(fmt::format("interrupted at step {}: checkpoint saved", step + 1));
      break;
    }
  }
  if (bar) bar->finish();
  if (!rates.empty()) {
    std::sort(rates.begin(), rates.end());
    result.items_per_s = rates[rates.size() / 2];
  }
  // Saved at the end unless an evaluation just saved it; with no step to run (max_iters 0, or a
  // resumed run already at max_iters) the model as it stands, so the announced checkpoint exists.
  const bool no_steps = start_step == o.max_iters;
  if (!result.interrupted && result.steps_done == o.max_iters && no_steps) save(result.steps_done);
  return result;
}

}  // namespace tg
