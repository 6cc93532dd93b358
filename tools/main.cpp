// `tapegrad`: the one command. Subcommands live in tools/cli/; tools/cli/run.cpp assembles them.
#include "tools/cli/run.h"

int main(int argc, char** argv) { return tg::cli::run(argc, argv); }
