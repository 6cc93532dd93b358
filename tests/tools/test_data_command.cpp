// `tapegrad data listops`: the files it writes, and flag errors that name the flag.
#include <unistd.h>

#include <filesystem>

#include "models/data/listops.h"
#include "test_util.h"
#include "tools/cli/commands.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

// Runs `tapegrad <args>` in process; returns the exit code (tg::Error propagates).
int run(std::vector<std::string> args) {
  CLI::App app;
  app.require_subcommand(1);
  cli::add_data_command(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return e.get_exit_code();
  }
  return 0;
}

TEST(DataCommand, WritesListOpsSplits) {
  fs::path dir = fs::temp_directory_path() / ("tg_data_cmd" + std::to_string(getpid()));
  fs::remove_all(dir);
  EXPECT_EQ(run({"data", "listops", "--out", dir.string(), "--train", "30", "--val", "5", "--test", "7",
                 "--min-len", "4", "--max-len", "30", "--max-depth", "4", "--max-args", "5", "--seed", "2"}),
            0);
  auto train = data::read_listops_tsv((dir / "train.tsv").string());
  EXPECT_EQ(train.size(), 30u);
  EXPECT_EQ(data::read_listops_tsv((dir / "val.tsv").string()).size(), 5u);
  EXPECT_EQ(data::read_listops_tsv((dir / "test.tsv").string()).size(), 7u);
  for (const auto& e : train) {
    EXPECT_GT(e.length, 4);
    EXPECT_LT(e.length, 30);
    EXPECT_EQ(e.target, data::listops_value(e.source));
  }
  // The same seed writes the same files.
  std::string first = train[0].source;
  run({"data", "listops", "--out", dir.string(), "--train", "30", "--val", "5", "--test", "7", "--min-len", "4",
       "--max-len", "30", "--max-depth", "4", "--max-args", "5", "--seed", "2"});
  EXPECT_EQ(data::read_listops_tsv((dir / "train.tsv").string())[0].source, first);
  fs::remove_all(dir);
}

TEST(DataCommand, FlagErrorsNameTheFlag) {
  std::string out = (fs::temp_directory_path() / "tg_never_written").string();
  EXPECT_TG_ERROR(run({"data", "listops", "--out", out, "--max-args", "1"}), "--max-args must be in [2, 10000]");
  EXPECT_TG_ERROR(run({"data", "listops", "--out", out, "--min-len", "10", "--max-len", "11"}),
                  "--max-len must be at least --min-len + 2");
  EXPECT_TG_ERROR(run({"data", "listops", "--out", out, "--min-len", "200", "--max-depth", "3"}),
                  "--min-len 200 is out of reach: with --max-depth 3 and --max-args 10 the longest");
  EXPECT_TG_ERROR(run({"data", "listops", "--out", out, "--val", "-2"}), "--val must be >= 0, got -2");
  EXPECT_TG_ERROR(run({"data", "listops", "--out", out, "--train", "0", "--val", "0", "--test", "0"}),
                  "ask for at least one example");
  EXPECT_NE(run({"data", "listops"}), 0);  // --out is required
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace tg
