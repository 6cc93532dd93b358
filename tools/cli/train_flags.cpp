#include "tools/cli/train_flags.h"

#include "autograd/error.h"
#include "nn/file_checks.h"

namespace tg::cli {

void add_optim_flags(CLI::App* c, models::OptimOptions& o) {
  c->add_option("--batch-size", o.batch_size, "Sequences per step B")->capture_default_str();
  c->add_option("--optimizer", o.optimizer, "adamw or sgd (torch.optim.SGD: no momentum unless --momentum)")
      ->capture_default_str();
  c->add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  c->add_option("--min-lr", o.min_lr, "Final learning rate of the cosine decay")->capture_default_str();
  c->add_option("--warmup-iters", o.warmup_iters, "Linear warmup steps")->capture_default_str();
  c->add_option("--lr-schedule", o.lr_schedule, "cosine, linear (both after a linear warmup, down to --min-lr) or constant")->capture_default_str();
  c->add_option("--lr-decay-iters", o.lr_decay_iters, "Step where the cosine reaches --min-lr (0 = --max-iters)")
      ->capture_default_str();
  c->add_option("--beta1", o.beta1, "AdamW beta1")->capture_default_str();
  c->add_option("--beta2", o.beta2, "AdamW beta2")->capture_default_str();
  c->add_option("--weight-decay", o.weight_decay,
                "Weight decay, on 2-D weights only (default: 0.1 for adamw, 0 for sgd)");
  c->add_option("--momentum", o.momentum, "SGD momentum, as torch.optim.SGD")->capture_default_str();
  c->add_flag("--nesterov", o.nesterov, "SGD with Nesterov momentum (needs --momentum > 0)");
  c->add_option("--grad-clip", o.grad_clip, "Clip the global gradient norm (0 = off)")->capture_default_str();
  c->add_option("--max-iters", o.max_iters, "Training steps")->capture_default_str();
  c->add_option("--eval-interval", o.eval_interval, "Steps between evaluations (0 = never)")->capture_default_str();
  c->add_option("--eval-iters", o.eval_iters, "Validation batches per evaluation")->capture_default_str();
  c->add_option("--seed", o.seed, "Seed of initialisation, batches and dropout")->capture_default_str();
  c->add_option("--threads", o.threads, "Threads for TBB and OpenBLAS (0 = all cores, shared by the ranks on a machine)")->capture_default_str();
  c->add_option("--log", o.log, "CSV log: step,loss,lr,tokens_per_s,val_loss");
  c->add_flag("--activation-checkpointing", o.activation_checkpointing,
              "Recompute each block's activations during backward instead of keeping them (less memory, "
              "about one more forward of time)");
  c->add_option("--bucket-cap-mb", o.bucket_cap_mb, "Under mpirun: MB of gradients per all-reduce bucket")
      ->capture_default_str();
  c->add_option("--dist-timeout", o.dist_timeout, "Under mpirun: seconds to wait for the other ranks before failing")
      ->capture_default_str();
  c->add_flag("--detect-anomaly", o.detect_anomaly,
              "Stop at the first op whose forward or backward produces NaN/Inf, naming it (slow)");
}

void check_log_apart(const std::string& log, const std::vector<std::pair<std::string, std::string>>& places) {
  if (log.empty()) return;
  for (const auto& [flag, path] : places)
    TG_CHECK(!same_or_inside(log, path), "--log: {} is {} {} {}; the log would write over it", log,
             flag == "--data" || flag == "--val-data" ? "the file of" : "inside the directory of", flag, path);
}

}  // namespace tg::cli
