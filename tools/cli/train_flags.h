#pragma once
// The optimisation flags every `train` subcommand shares (--optimizer, --lr, ..., --log).
#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

#include "models/training/train_options.h"

namespace tg::cli {

void add_optim_flags(CLI::App* command, models::OptimOptions& o);

/// Refuses, before any work, a --log that would write over an input or into a checkpoint
/// directory: `places` pairs a flag with its path ({"--data", path}, {"--out", dir}, ...).
void check_log_apart(const std::string& log, const std::vector<std::pair<std::string, std::string>>& places);

}  // namespace tg::cli
