#include "tools/cli/run.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <exception>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string_view>

#include "autograd/error.h"
#include "ops/kernels/blas_cpu.h"
#include "tools/cli/commands.h"
#include "tools/cli/flag_names.h"

namespace tg::cli {
namespace {

// The flags whose value is a path: an error that names the path but no flag gets the flag put
// in front ("--data: cannot read x.txt: ..."), since the library below speaks of files, not flags.
constexpr const char* kPathFlags[] = {"--data", "--val-data", "--out", "--log",  "--checkpoint", "--tokenizer", "--input",
                                      "--init-from", "--resume", "--csv", "--plot"};

// The chosen subcommands, outermost first: {"gpt", "train"}.
std::vector<const CLI::App*> chosen(const CLI::App& app) {
  std::vector<const CLI::App*> path;
  for (const CLI::App* at = &app;;) {
    std::vector<const CLI::App*> subs = at->get_subcommands([](const CLI::App* s) { return s->parsed(); });
    if (subs.empty()) return path;
    at = subs.front();
    path.push_back(at);
  }
}

std::string command_name(const std::vector<const CLI::App*>& path) {
  std::string name = "tapegrad";
  for (const CLI::App* s : path) name += " " + s->get_name();
  return name;
}

// Whether `message` names the path `value` as a word of its own (or a directory of a path it
// names: "o/config.json" names o), not as a piece of another word ("o" in "resuming").
bool names_path(const std::string& message, const std::string& value) {
  auto bounds = [](char c) { return std::string_view(" \t'\"`([:,;=").find(c) != std::string_view::npos; };
  for (size_t at = message.find(value); at != std::string::npos; at = message.find(value, at + 1)) {
    const size_t end = at + value.size();
    const bool before = at == 0 || bounds(message[at - 1]);
    const bool after = end == message.size() || bounds(message[end]) || message[end] == '/' || message[end] == ')' ||
                       (message[end] == '.' && (end + 1 == message.size() || message[end + 1] == ' '));
    if (before && after) return true;
  }
  return false;
}

// `message` with the path flag whose value it names put in front, unless it names a flag already.
std::string with_flag(std::string message, const std::vector<const CLI::App*>& path) {
  if (path.empty() || message.find("--") != std::string::npos) return message;
  for (const char* flag : kPathFlags) {
    const CLI::Option* opt = path.back()->get_option_no_throw(flag);
    if (opt == nullptr || opt->count() == 0) continue;
    for (const std::string& value : opt->results())
      if (!value.empty() && names_path(message, value)) return fmt::format("{}: {}", flag, message);
  }
  return message;
}

}  // namespace

int run(int argc, const char* const* argv, std::ostream& err) {
  CLI::App app("tapegrad: tape-based reverse-mode autograd for the CPU, with a transformer zoo");
  app.require_subcommand(1);
  app.set_version_flag("--version", [] {
    return fmt::format("tapegrad {} (OpenBLAS kernels: {})", TAPEGRAD_VERSION, kernels::blas_core_name());
  });
  add_gradcheck_command(app);
  add_bench_command(app);
  add_data_command(app);
  add_gpt_command(app);
  add_encoder_command(app);
  add_tokenizer_command(app);
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
  // The one error path: whatever a subcommand throws becomes one line naming the command, and
  // exit status 1; nothing reaches std::terminate.
  auto report = [&](const std::string& what) {
    std::vector<const CLI::App*> path = chosen(app);
    const std::string message = path.empty() ? what : with_flag_names(what, *path.back());
    err << fmt::format("{}: {}\n", command_name(path), with_flag(message, path));
    return 1;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a subcommand's own exit status (130: interrupted)
  } catch (const CLI::ParseError& e) {
    // --help prints and gives 0; a bad command line gives 2, as argparse and getopt tools do.
    return app.exit(e, std::cout, err) == 0 ? 0 : 2;
  } catch (const tg::Error& e) {
    return report(e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    return report(e.what());
  } catch (const std::bad_alloc&) {
    return report("out of memory: an allocation failed (std::bad_alloc); ask for a smaller model, batch or "
                  "sequence length");
  } catch (const std::length_error& e) {
    return report(fmt::format("a size beyond what can be allocated ({})", e.what()));
  } catch (const std::logic_error& e) {
    return report(fmt::format("internal error (a bug in tapegrad; please report it): {}", e.what()));
  } catch (const std::exception& e) {
    return report(e.what());
  } catch (...) {
    return report("internal error (a bug in tapegrad; please report it): an exception of unknown type");
  }
  return 0;
}

int run(const std::vector<std::string>& args, std::ostream& err) {
  std::vector<const char*> argv{"tapegrad"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return run(int(argv.size()), argv.data(), err);
}

}  // namespace tg::cli
