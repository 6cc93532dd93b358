// libFuzzer target: whole `tapegrad` commands, run in-process through tg::cli::run. The input
// chooses a subcommand from a fixed list, its flags and values (numeric flags clamped to tiny
// sizes so one input runs well under a second), and the files it reads: a text or .bin data file,
// a TSV, and a checkpoint directory derived from the fixture gpt2_tiny (or from a tiny encoder
// run) whose config.json, tokenizer.json, vocab.json, train_state.json or model.safetensors may
// be replaced or mutated by fuzzed bytes. Path flags may also get a missing path, a directory, a
// symlink loop or a path under a regular file.
//
// run() must answer every input with an exit code (0, 1 or CLI11's) and a message: any exception
// escaping it — tg::Error included — is a finding (abort), as are crashes, sanitizer reports,
// leaks, inputs slower than -timeout and allocations beyond -malloc_limit_mb (tools/fuzz.sh).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <fuzzer/FuzzedDataProvider.h>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include "tools/cli/run.h"

namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path root, gpt, enc, work;
};

void put(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string get(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

int run_quiet(const std::vector<std::string>& args) {
  std::ostringstream err;
  return tg::cli::run(args, err);
}

// Made once per process: a GPT checkpoint with its training state (the fixture's config, so
// its shapes, trained for one step on text over the fixture-sized vocabulary), and an encoder one.
const Scratch& scratch() {
  static const Scratch s = [] {
    Scratch t;
    const char* tmp = std::getenv("TMPDIR");
    t.root = fs::path(tmp && *tmp ? tmp : "/tmp") / ("tapegrad-fuzz-command-" + std::to_string(getpid()));
    fs::remove_all(t.root);
    fs::create_directories(t.root);
    static std::string root_to_remove = t.root.string();  // at a normal exit (a crash leaves it to look at)
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(root_to_remove, ec);
    });
    t.gpt = t.root / "gpt";
    t.enc = t.root / "enc";
    t.work = t.root / "work";
    // 17 characters: the fixture's vocab_size.
    std::string text;
    for (int i = 0; i < 40; ++i) text += "abcdefghijklmnop\n";
    put(t.root / "seed.txt", text);
    put(t.root / "seed.tsv", "Source\tTarget\n( [MAX 2 9 ] )\t9\n( [MIN 2 9 ] )\t2\n( [MED 1 5 7 ] )\t5\n"
                             "( [SM 3 4 ] )\t7\n( [MAX 1 ( [MIN 4 6 ] ) ] )\t4\n( [MIN 8 9 ] )\t8\n");
    const std::string fixture = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/gpt2_tiny";
    int a = run_quiet({"gpt", "train", "--data", (t.root / "seed.txt").string(), "--out", t.gpt.string(), "--init-from",
                       fixture, "--block-size", "8", "--batch-size", "2", "--max-iters", "1", "--eval-interval", "0",
                       "--threads", "1"});
    int b = run_quiet({"encoder", "train", "--data", (t.root / "seed.tsv").string(), "--out", t.enc.string(),
                       "--n-layer", "1", "--n-embd", "8", "--n-head", "2", "--max-len", "16", "--batch-size", "2",
                       "--max-iters", "1", "--eval-interval", "0", "--threads", "1"});
    if (a != 0 || b != 0 || !fs::exists(t.gpt / "tokenizer.json") || !fs::exists(t.enc / "vocab.json")) {
      std::fprintf(stderr, "fuzz_command: cannot make the seed checkpoints (gpt train %d, encoder train %d)\n", a, b);
      std::abort();
    }
    return t;
  }();
  return s;
}

// The subcommands to fuzz: all of them, or (FUZZ_COMMAND_ONLY=gpt,encoder) those whose name
// contains one of the comma-separated words, to look past a known finding in another command.
const std::vector<std::string>& command_list() {
  static const std::vector<std::string> list = [] {
    const std::vector<std::string> all = {"gpt train",     "gpt eval",     "gpt sample",      "gpt attention",
                                          "encoder train", "encoder eval", "data listops",    "bench attention",
                                          "gradcheck"};
    const char* only = std::getenv("FUZZ_COMMAND_ONLY");
    if (!only || !*only) return all;
    std::vector<std::string> words, kept;
    std::stringstream ss(only);
    for (std::string w; std::getline(ss, w, ',');)
      if (!w.empty()) words.push_back(w);
    for (const std::string& c : all)
      for (const std::string& w : words)
        if (c.find(w) != std::string::npos) {
          kept.push_back(c);
          break;
        }
    if (kept.empty()) {
      std::fprintf(stderr, "fuzz_command: FUZZ_COMMAND_ONLY=%s matches no command\n", only);
      std::abort();
    }
    return kept;
  }();
  return list;
}

class Builder {
 public:
  Builder(const uint8_t* data, size_t size) : in_(data, size), work_(scratch().work) {}

  std::vector<std::string> build() {
    const std::vector<std::string>& commands = command_list();
    std::string cmd = commands[in_.ConsumeIntegralInRange<size_t>(0, commands.size() - 1)];
    if (cmd == "gpt train") return gpt_train();
    if (cmd == "gpt eval") return with({"gpt", "eval"}, {{"--checkpoint", gpt_checkpoint()}, {"--data", data_file()},
                                                         {"--block-size", num(0, 20)}, {"--batch-size", num(0, 4)}});
    // Flags whose defaults are large (--max-new-tokens 500, --train 96000, --seq-lens up to 8192,
    // gradcheck's whole catalogue) are always given, clamped small.
    if (cmd == "gpt sample")
      return required({"gpt", "sample"}, {{"--max-new-tokens", num(0, 8)}},
                      {{"--checkpoint", gpt_checkpoint()}, {"--prompt", text(16)}, {"--temperature", real()},
                       {"--top-k", num(0, 20)}, {"--seed", num(0, 99)}, {"--no-kv-cache", ""}});
    if (cmd == "gpt attention")
      return with({"gpt", "attention"},
                  {{"--checkpoint", gpt_checkpoint()}, {"--prompt", text(12)}, {"--out", out_path("a.svg")}});
    if (cmd == "encoder train") return encoder_train();
    if (cmd == "encoder eval")
      return with({"encoder", "eval"},
                  {{"--checkpoint", encoder_checkpoint()}, {"--data", tsv_file("test.tsv")}, {"--batch-size", num(0, 8)}});
    if (cmd == "data listops")
      return required({"data", "listops"},
                      {{"--train", num(0, 6)}, {"--val", num(0, 3)}, {"--test", num(0, 3)}, {"--min-len", num(0, 30)},
                       {"--max-len", num(0, 60)}, {"--max-depth", num(0, 5)}},
                      {{"--out", out_path("listops")}, {"--max-args", num(1, 5)}, {"--seed", num(0, 9)}});
    if (cmd == "bench attention")
      return required({"bench", "attention"},
                      {{"--seq-lens", seq_lens()}, {"--batch", num(1, 2)}, {"--heads", num(1, 2)},
                       {"--head-dim", num(1, 8)}, {"--threads", "1"}, {"--reps", "1"}},
                      {{"--variants", pick({"dense", "flash", "sliding:4", "sparse", "linear", "dense,flash,linear",
                                            "sparse:4:2:1:1", "sliding:0", "", text(24)})},
                       {"--causal", ""}, {"--mode", pick({"fwd", "fwdbwd", text(6)})},
                       {"--csv", out_path("b.csv")}, {"--plot", out_path("b.svg")},
                       {"--max-memory", pick({"1K", "64M", "8G", "0", "-1", "99999999999999999999G", text(8)})},
                       {"--no-check", ""}});
    return required({"gradcheck"},
                    {{"--op", pick({"matmul", "gelu", "softmax", "layer_norm", "relu", text(10)})}, {"--threads", "1"}},
                    {});
  }

 private:
  using Flags = std::vector<std::pair<std::string, std::string>>;

  // Each flag is given or not (the input decides); a value "" marks a bare flag.
  std::vector<std::string> with(std::vector<std::string> head, const Flags& flags) {
    for (const auto& [flag, value] : flags) {
      if (!in_.ConsumeBool()) continue;
      head.push_back(flag);
      if (!value.empty() || flag == "--prompt" || flag == "--variants") head.push_back(value);
    }
    return head;
  }

  std::vector<std::string> required(std::vector<std::string> head, const Flags& always, const Flags& maybe) {
    for (const auto& [flag, value] : always) {
      head.push_back(flag);
      head.push_back(value);
    }
    std::vector<std::string> rest = with({}, maybe);
    head.insert(head.end(), rest.begin(), rest.end());
    return head;
  }

  std::vector<std::string> gpt_train() {
    Flags maybe = {{"--n-head", num(0, 4)},
                   {"--dropout", real()},
                   {"--bias", pick({"true", "false", "0", "maybe"})},
                   {"--attention", attention()},
                   {"--optimizer", pick({"adamw", "sgd", "adam"})},
                   {"--lr", real()},
                   {"--min-lr", real()},
                   {"--warmup-iters", num(0, 3)},
                   {"--lr-schedule", pick({"cosine", "constant", "x"})},
                   {"--lr-decay-iters", num(0, 3)},
                   {"--beta1", real()},
                   {"--beta2", real()},
                   {"--weight-decay", real()},
                   {"--grad-clip", real()},
                   {"--eval-interval", num(0, 2)},
                   {"--seed", num(0, 99)},
                   {"--log", out_path("log.csv")},
                   {"--val-data", data_file("val")},
                   {"--activation-checkpointing", ""},
                   {"--detect-anomaly", ""}};
    int from = in_.ConsumeIntegralInRange<int>(0, 3);  // 0: fresh, 1: --init-from, 2: --resume, 3: both
    if (from & 1) maybe.push_back({"--init-from", gpt_checkpoint()});
    if (from & 2) maybe.push_back({"--resume", gpt_checkpoint("resume")});
    return required({"gpt", "train"},
                    {{"--data", data_file()}, {"--out", out_path("out")}, {"--max-iters", num(0, 3)}, {"--threads", "1"},
                     {"--n-layer", num(0, 2)}, {"--n-embd", pick({"4", "8", "12", "16", num(0, 17)})},
                     {"--block-size", num(0, 16)}, {"--batch-size", num(0, 4)}, {"--eval-iters", num(0, 2)}},
                    maybe);
  }

  std::vector<std::string> encoder_train() {
    return required({"encoder", "train"},
                    {{"--data", tsv_file("train.tsv")}, {"--out", out_path("out")}, {"--max-iters", num(0, 3)},
                     {"--threads", "1"}, {"--n-layer", num(0, 2)}, {"--n-embd", pick({"4", "8", num(0, 12)})},
                     {"--max-len", num(0, 24)}, {"--batch-size", num(0, 4)}, {"--eval-iters", num(0, 2)}},
                    {{"--val-data", tsv_file("val.tsv")},
                     {"--n-classes", num(0, 12)},
                     {"--n-head", num(0, 4)},
                     {"--dropout", real()},
                     {"--attention", attention()},
                     {"--pooling", pick({"mean", "cls", "max"})},
                     {"--norm", pick({"post", "pre", "mid"})},
                     {"--pos", pick({"learned", "sinusoidal", "rope"})},
                     {"--optimizer", pick({"adamw", "sgd"})},
                     {"--lr", real()},
                     {"--eval-interval", num(0, 2)},
                     {"--log", out_path("log.csv")},
                     {"--bias", pick({"true", "false"})}});
  }

  std::string num(int64_t lo, int64_t hi) { return std::to_string(in_.ConsumeIntegralInRange<int64_t>(lo, hi)); }

  std::string real() {
    switch (in_.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: return "nan";
      case 1: return "inf";
      case 2: return "-1";
      case 3: return "0";
      case 4: return "1e300";
      default: return std::to_string(in_.ConsumeFloatingPointInRange<double>(0.0, 1.0));
    }
  }

  std::string text(size_t n) { return in_.ConsumeRandomLengthString(n); }

  std::string pick(std::initializer_list<std::string> options) {
    std::vector<std::string> v(options);
    return v[in_.ConsumeIntegralInRange<size_t>(0, v.size() - 1)];
  }

  std::string attention() { return pick({"dense", "flash", "sliding:2", "sparse", "sparse:2:2:1:1", "linear", text(12)}); }

  std::string seq_lens() {
    std::string s;
    int n = in_.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < n; ++i) s += (i ? "," : "") + num(0, 48);
    // Malformed lists too, but no free text: a long free-form length would be slow, not wrong.
    return in_.ConsumeBool() ? s : pick({"", ",", "8,,16", "x", "-4", "0", "8;16", "99999999999999999999"});
  }

  // A path flag's value: usually a real file made from the input, sometimes trouble (none with
  // FUZZ_COMMAND_NO_TROUBLE=1, to look past the known findings of missing files and loops).
  std::string trouble(const std::string& name) {
    static const bool none = std::getenv("FUZZ_COMMAND_NO_TROUBLE") != nullptr;
    int kind = in_.ConsumeIntegralInRange<int>(0, 15);
    if (none) return "";
    switch (kind) {
      case 0: return (work_ / ("missing-" + name)).string();
      case 1: fs::create_directories(work_ / ("dir-" + name)); return (work_ / ("dir-" + name)).string();
      case 2: {
        fs::path p = work_ / ("loop-" + name);
        std::error_code ec;
        fs::create_symlink(p.filename(), p, ec);
        return p.string();
      }
      case 3: put(work_ / "afile", "x"); return (work_ / "afile" / name).string();
      default: return "";
    }
  }

  std::string out_path(const std::string& name) {
    std::string t = trouble(name);
    return t.empty() ? (work_ / name).string() : t;
  }

  std::string data_file(const std::string& stem = "data") {
    std::string t = trouble(stem);
    if (!t.empty()) return t;
    bool bin = in_.ConsumeBool();
    fs::path p = work_ / (stem + (bin ? ".bin" : ".txt"));
    put(p, in_.ConsumeRandomLengthString(512));
    return p.string();
  }

  std::string tsv_file(const std::string& name) {
    std::string t = trouble(name);
    if (!t.empty()) return t;
    fs::path p = work_ / name;
    // Either the seed rows with fuzzed rows after them, or fuzzed bytes alone.
    std::string body = in_.ConsumeBool() ? get(scratch().root / "seed.tsv") : "";
    put(p, body + in_.ConsumeRandomLengthString(512));
    return p.string();
  }

  // A copy of the seed GPT checkpoint, perhaps with one file replaced or mutated by the input.
  std::string gpt_checkpoint(const std::string& name = "ckpt") {
    std::string t = trouble(name);
    if (!t.empty()) return t;
    fs::path dir = work_ / name;
    fs::copy(scratch().gpt, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    mutate(dir, {"config.json", "tokenizer.json", "model.safetensors", "train_state.json", "training_state.safetensors"});
    return dir.string();
  }

  std::string encoder_checkpoint() {
    std::string t = trouble("enc");
    if (!t.empty()) return t;
    fs::path dir = work_ / "enc";
    fs::copy(scratch().enc, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    mutate(dir, {"config.json", "vocab.json", "model.safetensors"});
    return dir.string();
  }

  void mutate(const fs::path& dir, std::vector<std::string> files) {
    int how = in_.ConsumeIntegralInRange<int>(0, 5);
    if (how == 0) return;  // intact
    fs::path f = dir / files[in_.ConsumeIntegralInRange<size_t>(0, files.size() - 1)];
    std::string bytes = get(f);
    switch (how) {
      case 1: bytes = in_.ConsumeRandomLengthString(1024); break;  // replaced
      case 2: {  // some bytes overwritten (in a safetensors file, mostly the header)
        int n = in_.ConsumeIntegralInRange<int>(1, 8);
        for (int i = 0; i < n && !bytes.empty(); ++i) {
          size_t at = in_.ConsumeIntegralInRange<size_t>(0, std::min<size_t>(bytes.size() - 1, 600));
          bytes[at] = char(in_.ConsumeIntegral<uint8_t>());
        }
        break;
      }
      case 3: bytes.resize(in_.ConsumeIntegralInRange<size_t>(0, bytes.size())); break;  // truncated
      case 4: fs::remove(f); return;                                                      // missing
      default: {  // a fuzzed string spliced in (a JSON value, a header field)
        size_t at = in_.ConsumeIntegralInRange<size_t>(0, std::min<size_t>(bytes.size(), 600));
        bytes.insert(at, in_.ConsumeRandomLengthString(32));
        break;
      }
    }
    put(f, bytes);
  }

  FuzzedDataProvider in_;
  fs::path work_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The commands' own output (samples, tables, "wrote ...") goes nowhere; libFuzzer uses stderr.
  int null = ::open("/dev/null", O_WRONLY);
  if (null >= 0) ::dup2(null, STDOUT_FILENO);
  scratch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& work = scratch().work;
  std::error_code ec;
  fs::remove_all(work, ec);
  fs::create_directories(work);
  std::vector<std::string> args = Builder(data, size).build();
  std::string shown = "tapegrad";
  for (const std::string& a : args) shown += " '" + a + "'";
  // FUZZ_COMMAND_SHOW=1: print each command before running it (to see what an artifact runs).
  static const bool show = std::getenv("FUZZ_COMMAND_SHOW") != nullptr;
  if (show) std::fprintf(stderr, "fuzz_command: %s\n", shown.c_str());
  std::ostringstream err;
  try {
    tg::cli::run(args, err);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_command: %s escaped tg::cli::run: %s\n  command: %s\n", typeid(e).name(), e.what(),
                 shown.c_str());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz_command: a non-std exception escaped tg::cli::run\n  command: %s\n", shown.c_str());
    std::abort();
  }
  return 0;
}
