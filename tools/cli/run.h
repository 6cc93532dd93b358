#pragma once
// The body of `tapegrad`'s main, callable in-process (the tests run bad command lines through it).
#include <iostream>
#include <string>
#include <vector>

namespace tg::cli {

/// Builds the app, parses argv and runs the chosen subcommand. Returns the exit code: 0, CLI11's
/// code for a bad command line (its message written to `err`), or 1 for any exception the command
/// throws, written to `err` as one line "tapegrad gpt train: <message>" (a path flag put in front
/// of a message that names its path only; a logic_error called a bug). Nothing escapes.
int run(int argc, const char* const* argv, std::ostream& err = std::cerr);
/// Same, with the arguments after the program name: run({"gpt", "train", "--data", ...}).
int run(const std::vector<std::string>& args, std::ostream& err = std::cerr);

}  // namespace tg::cli
