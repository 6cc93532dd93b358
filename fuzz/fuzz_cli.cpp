// libFuzzer target: the `tapegrad` command line. The input is argv[1..], one argument per line
// ('\n'-separated); the real CLI11 app is built from tools/cli's add_*_command functions as
// tools/main.cpp builds it. The app's own parse-complete callback, which CLI11 runs after every
// flag is parsed, validated and stored but before any subcommand's callback, stops there, so only
// parsing runs (no training, no file written). The subcommands' callbacks stay in place: they
// own (shared_ptr) the storage the flags are written to. CLI::ParseError (unknown flag, bad
// value, --help) and tg::Error are the parser's answers; anything else is a finding.
#include <cstdlib>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "tools/cli/commands.h"

namespace {

struct ParsedOnly {};  // thrown once parsing is complete, before any command runs

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"tapegrad"};
  std::string current;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(char(data[i]));
    }
  }
  if (!current.empty()) args.push_back(current);
  if (args.size() > 64) return 0;  // a command line, not a file
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());

  CLI::App app("tapegrad");
  app.require_subcommand(1);
  tg::cli::add_gradcheck_command(app);
  tg::cli::add_bench_command(app);
  tg::cli::add_data_command(app);
  tg::cli::add_gpt_command(app);
  tg::cli::add_encoder_command(app);
  app.parse_complete_callback([] { throw ParsedOnly{}; });
  try {
    app.parse(int(argv.size()), argv.data());
    std::abort();  // a command ran: the harness no longer stops before the work
  } catch (const ParsedOnly&) {
  } catch (const CLI::ParseError&) {
  } catch (const tg::Error&) {
  }
  return 0;
}
