#pragma once
// The subcommands of `tapegrad`, each added to the app by its own file.
#include <CLI/CLI.hpp>

namespace tg::cli {

/// `tapegrad gradcheck`: the gradient check of the whole op catalogue, as a table.
void add_gradcheck_command(CLI::App& app);
/// `tapegrad bench attention`: the attention variants' time and memory against T.
void add_bench_command(CLI::App& app);
/// `tapegrad bench tokenizer`: BPE encoding throughput (tools/cli/bench_tokenizer_command.cpp).
void add_bench_tokenizer_command(CLI::App& bench);
/// `tapegrad data listops`: LRA's ListOps splits as TSV files.
void add_data_command(CLI::App& app);
/// `tapegrad gpt train|eval|sample|attention`.
void add_gpt_command(CLI::App& app);
/// `tapegrad encoder train|eval`.
void add_encoder_command(CLI::App& app);
/// `tapegrad tokenizer encode|decode` (byte-level BPE).
void add_tokenizer_command(CLI::App& app);

}  // namespace tg::cli
