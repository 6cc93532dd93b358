// `tapegrad`: the one command. Subcommands live in tools/cli/.
#include <fmt/format.h>

#include "autograd/error.h"
#include "tools/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app("tapegrad: tape-based reverse-mode autograd for the CPU, with a transformer zoo");
  app.require_subcommand(1);
  tg::cli::add_gradcheck_command(app);
  tg::cli::add_bench_command(app);
  tg::cli::add_data_command(app);
  tg::cli::add_gpt_command(app);
  tg::cli::add_encoder_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // also carries the subcommands' exit codes (RuntimeError)
  } catch (const tg::Error& e) {
    fmt::print(stderr, "tapegrad: {}\n", e.what());
    return 1;
  }
  return 0;
}
