// The 2-rank test of data-parallel training, run by mpirun (registered with CTest in
// CMakeLists.txt). Modes:
//   train  N ranks with batch B each train a small GPT for kSteps AdamW steps through
//          DistributedDataParallel; rank 0 also trains a reference copy alone on the whole
//          global batch of N·B. Checks: the loss curves agree within float tolerance, the
//          parameters are bit-identical across ranks (and close to the reference), several
//          buckets were used and every one was started by a gradient hook during backward.
//   train_checkpointed  the same with activation checkpointing on the ranks' models (their
//          block parameters get their gradients, and fire their hooks, in the nested backward
//          of each block's recomputation).
//   stall  rank 1 stops taking part at step 3 (sleeps): rank 0's gradient all-reduce must fail
//          with a tg::Error naming the bucket within its timeout (CTest checks the message and
//          the time bound).
//   die    rank 1 kills itself at step 3: mpirun must end the job (CTest checks its message).
// Exit status 0 when every check holds; failures are printed with their numbers.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>

#include "autograd/autograd.h"
#include "models/data/token_data.h"
#include "models/gpt/gpt.h"
#include "models/training/train_options.h"
#include "nn/parallel/distributed_data_parallel.h"

namespace {

using namespace tg;
constexpr int kSteps = 30;
constexpr int64_t kBatchPerRank = 2, kBlock = 8;

int failures = 0;
void check(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    fmt::print(stderr, "rank {}: FAILED: {}\n", distributed::get_rank(), what);
  }
}

models::GPTConfig tiny_config() {
  models::GPTConfig c;
  c.vocab_size = 13, c.n_positions = kBlock, c.n_layer = 2, c.n_head = 2, c.n_embd = 16;
  return c;
}

// A corpus with structure to learn: a repeating pattern with some noise.
std::vector<uint16_t> corpus() {
  std::vector<uint16_t> t(4000);
  for (size_t i = 0; i < t.size(); ++i) t[i] = uint16_t((i * 7 + (data::philox_below(99, 0, i, 5) == 0 ? 3 : 0)) % 13);
  return t;
}

double mean_over_ranks(double v, double timeout_s) {
  Tensor t = full({1}, v, DType::f64);
  distributed::all_reduce(t, distributed::ReduceOp::SUM, timeout_s);
  return t.data<double>()[0] / distributed::get_world_size();
}

int run(const std::string& mode, double timeout_s) {
  const int rank = distributed::get_rank(), world = distributed::get_world_size();
  set_num_threads(1);
  const std::vector<uint16_t> tokens = corpus();
  Generator init(5), init_ref(5);
  models::GPT model(tiny_config(), init);
  model.set_activation_checkpointing(mode == "train_checkpointed");
  models::OptimOptions oo;
  oo.lr = 3e-3, oo.weight_decay = 0.1;
  // Tiny buckets (8 KB) so that this small model spreads over several of them.
  nn::parallel::DistributedDataParallel ddp(model, {8.0 / 1024, timeout_s});
  std::unique_ptr<optim::Optimizer> opt = oo.make_optimizer(model);
  std::unique_ptr<models::GPT> ref;  // rank 0: the single-process run on the global batch
  std::unique_ptr<optim::Optimizer> ref_opt;
  if (rank == 0) {
    ref = std::make_unique<models::GPT>(tiny_config(), init_ref);
    ref_opt = oo.make_optimizer(*ref);
  }
  Generator data_gen(11);
  double worst_loss_diff = 0;
  for (int step = 0; step < kSteps; ++step) {
    const uint64_t global = data_gen.advance(uint64_t(world * kBatchPerRank));
    Generator mine(data_gen.seed());
    mine.set_offset(global + uint64_t(rank * kBatchPerRank));
    data::TokenBatch b = data::sample_batch(tokens, kBlock, kBatchPerRank, mine);
    Tensor loss = model.forward(b.x, b.y).loss;
    const double mean_loss = mean_over_ranks(loss.item(), timeout_s);
    // Rank 1 fails while rank 0 goes on into backward and its gradient all-reduces.
    if (rank == 1 && step == 3 && mode == "stall") std::this_thread::sleep_for(std::chrono::seconds(120));
    if (rank == 1 && step == 3 && mode == "die") std::raise(SIGKILL);
    opt->zero_grad();
    backward(loss);
    opt->step();
    if (ref) {
      Generator all(data_gen.seed());
      all.set_offset(global);
      data::TokenBatch gb = data::sample_batch(tokens, kBlock, world * kBatchPerRank, all);
      Tensor ref_loss = ref->forward(gb.x, gb.y).loss;
      const double r = ref_loss.item();
      worst_loss_diff = std::max(worst_loss_diff, std::abs(r - mean_loss) / std::max(1.0, std::abs(r)));
      ref_opt->zero_grad();
      backward(ref_loss);
      ref_opt->step();
      if (step == 0 || step == kSteps - 1) fmt::print("step {}: loss {:.6f} over {} ranks, {:.6f} alone\n", step, mean_loss, world, r);
    }
  }
  // Bit-identical parameters: every rank compares its own with rank 0's.
  int64_t differing = 0;
  std::vector<Tensor> params = model.parameters();
  for (const Tensor& p : params) {
    Tensor theirs = p.detach().clone();
    distributed::broadcast(theirs, 0, timeout_s);
    differing += std::memcmp(theirs.raw_data(), p.raw_data(), p.nbytes()) != 0;
  }
  check(differing == 0, fmt::format("{} of {} parameters differ from rank 0's after {} steps", differing, params.size(), kSteps));
  const nn::parallel::ReducerStats& st = ddp.reducer().stats();
  check(st.num_buckets >= 3, fmt::format("{} buckets, expected several with an 8 KB cap", st.num_buckets));
  check(st.backward_passes == kSteps, fmt::format("{} backward passes synchronised, expected {}", st.backward_passes, kSteps));
  check(st.buckets_started_in_backward == st.num_buckets * kSteps,
        fmt::format("{} buckets started by gradient hooks during backward, expected {} × {}",
                    st.buckets_started_in_backward, st.num_buckets, kSteps));
  if (ref) {
    check(worst_loss_diff < 1e-4, fmt::format("loss curves differ by up to {:.3g} (relative)", worst_loss_diff));
    double worst_param = 0;
    std::vector<Tensor> rp = ref->parameters();
    for (size_t i = 0; i < params.size(); ++i)
      for (int64_t k = 0; k < params[i].numel(); ++k)
        worst_param = std::max(worst_param, double(std::abs(params[i].data<float>()[k] - rp[i].data<float>()[k])));
    check(worst_param < 1e-4, fmt::format("parameters differ from the single-process run by up to {:.3g}", worst_param));
    fmt::print("{} ranks × batch {} vs 1 process × batch {}: {} steps, worst loss difference {:.3g} (relative), worst "
               "parameter difference {:.3g}, {} buckets of {} bytes in all, parameters identical on every rank: {}\n",
               world, kBatchPerRank, world * kBatchPerRank, kSteps, worst_loss_diff, worst_param, st.num_buckets,
               st.bytes_per_step, differing == 0 ? "yes" : "no");
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "train";
  const double timeout_s = argc > 2 ? std::stod(argv[2]) : 60;
  try {
    distributed::init_process_group();
    int status = run(mode, timeout_s);
    status = int(mean_over_ranks(status, timeout_s) > 0);  // all ranks agree on failure
    distributed::destroy_process_group();
    return status;
  } catch (const tg::Error& e) {
    // No MPI_Finalize here: mpirun sees this rank fail and ends the job.
    fmt::print(stderr, "rank {}: tapegrad: {}\n", distributed::get_rank(), e.what());
    return 1;
  }
}
