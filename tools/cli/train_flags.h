#pragma once
// The optimisation flags every `train` subcommand shares (--optimizer, --lr, ..., --log).
#include <CLI/CLI.hpp>

#include "models/train_options.h"

namespace tg::cli {

void add_optim_flags(CLI::App* command, models::OptimOptions& o);

}  // namespace tg::cli
