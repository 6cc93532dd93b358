// libFuzzer target: the `tapegrad` command line. The input is argv[1..], one argument per line
// ('\n'-separated); the real CLI11 app is built from tools/cli's add_*_command functions as
// tools/main.cpp builds it, with every subcommand's callback removed, so only parsing and the
// flags' validators run (no training, no file written). CLI::ParseError (unknown flag, bad
// value, --help) and tg::Error are the parser's answers; anything else is a finding.
#include <string>
#include <vector>

#include "autograd/error.h"
#include "tools/cli/commands.h"

namespace {

void remove_callbacks(CLI::App* app) {
  app->final_callback(nullptr);
  app->parse_complete_callback(nullptr);
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) remove_callbacks(sub);
}

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
  remove_callbacks(&app);
  try {
    app.parse(int(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
  } catch (const tg::Error&) {
  }
  return 0;
}
