#include "tools/cli/run.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <new>

#include "autograd/error.h"
#include "tools/cli/commands.h"

namespace tg::cli {

int run(int argc, const char* const* argv, std::ostream& err) {
  CLI::App app("tapegrad: tape-based reverse-mode autograd for the CPU, with a transformer zoo");
  app.require_subcommand(1);
  add_gradcheck_command(app);
  add_bench_command(app);
  add_data_command(app);
  add_gpt_command(app);
  add_encoder_command(app);
  // An unknown first word: name it and the commands there are (CLI11 would only say that a
  // subcommand is required).
  if (argc > 1 && argv[1][0] != '-') {
    std::string first = argv[1];
    std::vector<std::string> names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      names.push_back(sub->get_name());
      known |= sub->get_name() == first;
    }
    if (!known) {
      err << fmt::format("tapegrad: unknown command '{}' (the commands are {})\n", first, fmt::join(names, ", "));
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, std::cout, err);  // also carries the subcommands' exit codes (RuntimeError)
  } catch (const tg::Error& e) {
    err << fmt::format("tapegrad: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {  // sizes are checked up front; this is the last line of defence
    err << "tapegrad: out of memory: an allocation failed (lower the sizes given)\n";
    return 1;
  }
  return 0;
}

int run(const std::vector<std::string>& args, std::ostream& err) {
  std::vector<const char*> argv{"tapegrad"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return run(int(argv.size()), argv.data(), err);
}

}  // namespace tg::cli
