#include "models/data/listops.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <unordered_set>

#include "autograd/available_memory.h"
#include "autograd/checked_size.h"
#include "autograd/error.h"
#include "models/data/token_data.h"
#include "ops/kernels/philox.h"

namespace tg::data {
namespace {

// LRA's operator tokens, in the order its OPERATORS list gives them.
constexpr const char* kOps[] = {"[MIN", "[MAX", "[MED", "[SM"};
constexpr int kNumOps = 4;
// LRA's VALUE_P: a node below max_depth is an operator when its draw r <= 0.25.
constexpr double kValueP = 0.25;
// Draws in a row that may add nothing before generation gives up (lengths too rare or exhausted).
constexpr int64_t kMaxMisses = 2'000'000;

int op_index(std::string_view token) {
  for (int i = 0; i < kNumOps; ++i)
    if (token == kOps[i]) return i;
  return -1;
}

// LRA's to_value on a saturated function: MIN, MAX, MED (int(np.median)), SM (sum % 10).
int apply(int op, std::vector<int>& args) {
  switch (op) {
    case 0: return *std::min_element(args.begin(), args.end());
    case 1: return *std::max_element(args.begin(), args.end());
    case 2: {
      std::sort(args.begin(), args.end());
      size_t n = args.size();
      // np.median of an even count is the mean of the middle two; int() rounds it down (>= 0).
      return n % 2 ? args[n / 2] : (args[n / 2 - 1] + args[n / 2]) / 2;
    }
    default: {
      int sum = 0;
      for (int a : args) sum += a;
      return sum % 10;
    }
  }
}

// A sequential stream of Philox draws (one block each) for a seed.
class Draws {
 public:
  explicit Draws(uint64_t seed) : seed_(seed) {}
  double uniform() {  // [0, 1), 53 bits, as Python's random.random()
    kernels::PhiloxBlock b = kernels::philox4x32(counter_++, seed_);
    return static_cast<double>(((uint64_t(b[0]) << 32) | b[1]) >> 11) * (1.0 / 9007199254740992.0);
  }
  int64_t randint(int64_t lo, int64_t hi) {  // inclusive, as Python's random.randint
    return lo + static_cast<int64_t>(philox_below(seed_, counter_++, 0, uint64_t(hi - lo + 1)));
  }

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

// One draw of LRA's generate_tree, written straight to LRA's text. Stops early (overflow) once
// the expression reaches max_len tokens, since it would be rejected anyway.
struct TreeWriter {
  Draws& rng;
  int64_t max_depth, max_args, max_len;
  std::string out;
  int64_t length = 0;
  bool overflow = false;

  // Appends the node drawn at `depth` and returns its value (meaningless after overflow).
  int node(int64_t depth) {
    double r = depth < max_depth ? rng.uniform() : 1.0;
    if (r > kValueP) {
      int v = static_cast<int>(rng.randint(0, 9));
      out += static_cast<char>('0' + v);
      overflow = ++length >= max_len;
      return v;
    }
    int64_t n_args = rng.randint(2, max_args);
    int op = static_cast<int>(rng.randint(0, kNumOps - 1));
    length += 2;  // the operator and its ']'
    if (length >= max_len) {
      overflow = true;
      return 0;
    }
    // LRA nests ((((op a0) a1) ...) ]): one "(" per application, n_args + 1 in all.
    for (int64_t i = 0; i <= n_args; ++i) out += "( ";
    out += kOps[op];
    std::vector<int> args;
    args.reserve(static_cast<size_t>(n_args));
    for (int64_t i = 0; i < n_args; ++i) {
      out += ' ';
      args.push_back(node(depth + 1));
      if (overflow) return 0;
      out += " )";
    }
    out += " ] )";
    return apply(op, args);
  }
};

}  // namespace

int64_t listops_longest(int64_t max_depth, int64_t max_args) {
  // A node at depth max_depth is a digit; above it, an operator of max_args arguments.
  int64_t longest = 1;
  for (int64_t d = 1; d < max_depth; ++d) {
    longest = 2 + max_args * longest;
    if (longest > (int64_t(1) << 40)) return int64_t(1) << 40;  // far beyond any max_len
  }
  return longest;
}

void check_listops_settings(int64_t min_len, int64_t max_len, int64_t max_depth, int64_t max_args) {
  TG_CHECK(min_len >= 0, "listops: min_len must be >= 0, got {}", min_len);
  TG_CHECK(max_len >= min_len + 2,
           "listops: max_len must be at least min_len + 2 (examples keep min_len < length < max_len, as "
           "LRA), got min_len {} and max_len {}",
           min_len, max_len);
  TG_CHECK(max_depth >= 1 && max_depth <= 10000, "listops: max_depth must be in [1, 10000], got {}", max_depth);
  TG_CHECK(max_args >= 2 && max_args <= 10000, "listops: max_args must be in [2, 10000], got {}", max_args);
  int64_t longest = listops_longest(max_depth, max_args);
  TG_CHECK(longest > min_len,
           "listops: no expression is longer than min_len {}: with max_depth {} and max_args {} the longest "
           "has {} tokens",
           min_len, max_depth, max_args, longest);
}

std::vector<ListOpsExample> generate_listops(int64_t n, int64_t min_len, int64_t max_len, int64_t max_depth,
                                             int64_t max_args, uint64_t seed, const ListOpsProgress& progress) {
  TG_CHECK(n >= 0, "generate_listops: n must be >= 0, got {}", n);
  check_listops_settings(min_len, max_len, max_depth, max_args);
  Draws rng(seed);
  std::unordered_set<std::string> seen;
  std::vector<ListOpsExample> out;
  out.reserve(static_cast<size_t>(n));
  int64_t misses = 0;
  while (static_cast<int64_t>(out.size()) < n) {
    TreeWriter w{rng, max_depth, max_args, max_len, {}, 0, false};
    int value = w.node(1);  // LRA starts the root at depth 1
    if (!w.overflow && w.length > min_len && w.length < max_len && !seen.contains(w.out)) {
      seen.insert(w.out);
      out.push_back({std::move(w.out), value, w.length});
      misses = 0;
      int64_t done = static_cast<int64_t>(out.size());
      if (progress && (done % 100 == 0 || done == n)) progress(done, n);
    } else if (++misses >= kMaxMisses) {
      fail("generate_listops: {} draws in a row gave no new example with {} < length < {} (max_depth {}, "
           "max_args {}); found {} of {}. Such lengths are too rare or their distinct expressions ran out: "
           "widen the lengths or ask for fewer examples",
           kMaxMisses, min_len, max_len, max_depth, max_args, out.size(), n);
    }
  }
  return out;
}

std::vector<std::string> listops_tokens(std::string_view source) {
  std::vector<std::string> tokens;
  size_t i = 0;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (i < source.size()) {
    while (i < source.size() && space(source[i])) ++i;
    size_t start = i;
    while (i < source.size() && !space(source[i])) ++i;
    std::string_view word = source.substr(start, i - start);
    if (!word.empty() && word != "(" && word != ")") tokens.emplace_back(word);
  }
  return tokens;
}

int listops_value(const std::vector<std::string>& tokens) {
  struct Frame {
    int op;
    std::vector<int> args;
  };
  std::vector<Frame> stack;
  int result = -1;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    TG_CHECK(result < 0, "listops_value: token '{}' at position {} follows the end of the expression", t, i);
    int value = -1;
    if (int op = op_index(t); op >= 0) {
      stack.push_back({op, {}});
      continue;
    } else if (t.size() == 1 && t[0] >= '0' && t[0] <= '9') {
      value = t[0] - '0';
    } else if (t == "]") {
      TG_CHECK(!stack.empty(), "listops_value: ']' at position {} closes no operator", i);
      Frame f = std::move(stack.back());
      stack.pop_back();
      TG_CHECK(!f.args.empty(), "listops_value: {} closed at position {} without arguments", kOps[f.op], i);
      value = apply(f.op, f.args);
    } else {
      fail("listops_value: unknown token '{}' at position {} (expected a digit, [MIN, [MAX, [MED, [SM or ])", t,
           i);
    }
    if (stack.empty())
      result = value;
    else
      stack.back().args.push_back(value);
  }
  TG_CHECK(stack.empty(), "listops_value: {} is never closed by ']'", stack.empty() ? "" : kOps[stack.back().op]);
  TG_CHECK(result >= 0, "listops_value: the expression is empty");
  return result;
}

int listops_value(std::string_view source) { return listops_value(listops_tokens(source)); }

Vocab listops_vocab() {
  std::vector<std::string> tokens = {"<pad>", "<unk>"};
  for (int d = 0; d <= 9; ++d) tokens.push_back(std::to_string(d));
  for (const char* op : kOps) tokens.emplace_back(op);
  tokens.emplace_back("]");
  return Vocab(std::move(tokens), "<pad>", "<unk>");
}

void write_listops_tsv(const std::string& path, const std::vector<ListOpsExample>& examples) {
  std::string text = "Source\tTarget\n";
  for (size_t i = 0; i < examples.size(); ++i) {
    const ListOpsExample& e = examples[i];
    TG_CHECK(e.source.find_first_of("\t\r\n") == std::string::npos,
             "write_listops_tsv: example {} has a tab or a line break in its source", i);
    text += e.source;
    text += '\t';
    text += std::to_string(e.target);
    text += '\n';
  }
  write_file_atomically(path, text);
}

std::vector<ListOpsExample> read_listops_tsv(const std::string& path) {
  // The file's text and the examples' copies of it are held at once.
  std::error_code ec;
  if (uintmax_t size = std::filesystem::file_size(path, ec); !ec)
    check_memory_fits(2.0 * double(size), fmt::format("read_listops_tsv: reading {}", path));
  std::string text = read_file_bytes(path);
  std::vector<ListOpsExample> out;
  size_t pos = 0;
  int64_t line_no = 0;
  bool header = false;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF (Python's csv writes it)
    if (!header) {
      TG_CHECK(line == "Source\tTarget", "{}:{}: expected the header 'Source<TAB>Target', found '{}'", path,
               line_no, line.substr(0, 60));
      header = true;
      continue;
    }
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
    size_t tab = line.find('\t');
    TG_CHECK(tab != std::string_view::npos && line.find('\t', tab + 1) == std::string_view::npos,
             "{}:{}: expected two tab-separated fields (Source, Target)", path, line_no);
    std::string_view target = line.substr(tab + 1);
    int value = -1;
    auto [ptr, ec] = std::from_chars(target.data(), target.data() + target.size(), value);
    TG_CHECK(ec == std::errc() && ptr == target.data() + target.size() && value >= 0 && value <= 9,
             "{}:{}: the target '{}' is not a ListOps value 0-9", path, line_no, target);
    ListOpsExample e;
    e.source = std::string(line.substr(0, tab));
    e.target = value;
    e.line = line_no;
    e.length = static_cast<int64_t>(listops_tokens(e.source).size());
    TG_CHECK(e.length > 0, "{}:{}: the source is empty", path, line_no);
    out.push_back(std::move(e));
  }
  TG_CHECK(header, "{}: the file is empty; expected the header 'Source<TAB>Target'", path);
  return out;
}

ClassificationDataset encode_listops(const std::vector<ListOpsExample>& examples, const Vocab& vocab,
                                     int64_t max_len) {
  TG_CHECK(max_len >= 0, "encode_listops: max_len must be >= 0 (0 = no limit), got {}", max_len);
  std::vector<ClassificationExample> encoded;
  encoded.reserve(examples.size());
  for (const ListOpsExample& e : examples) {
    ClassificationExample c;
    for (const std::string& t : listops_tokens(e.source)) c.ids.push_back(vocab.id(t));
    c.label = e.target;
    encoded.push_back(std::move(c));
  }
  ClassificationDataset ds(std::move(encoded), vocab.pad_id());
  if (max_len > 0) ds.truncate(max_len);
  return ds;
}

ClassificationDataset load_listops(const std::string& path, const Vocab& vocab, int64_t max_len) {
  try {
    return encode_listops(read_listops_tsv(path), vocab, max_len);
  } catch (const Error& e) {
    std::string what = e.what();
    if (what.find(path) != std::string::npos) throw;
    fail("{}: {}", path, what);
  }
}

void write_listops_splits(const std::string& dir, const ListOpsSplitSizes& sizes, int64_t min_len,
                          int64_t max_len, int64_t max_depth, int64_t max_args, uint64_t seed,
                          const ListOpsProgress& progress) {
  TG_CHECK(sizes.train >= 0 && sizes.val >= 0 && sizes.test >= 0,
           "write_listops_splits: split sizes must be >= 0, got train {}, val {}, test {}", sizes.train,
           sizes.val, sizes.test);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  TG_CHECK(!ec && std::filesystem::is_directory(dir), "cannot create the directory {}: {}", dir, ec.message());
  int64_t total = sum_or_fail({sizes.train, sizes.val, sizes.test}, "write_listops_splits: train + val + test");
  std::vector<ListOpsExample> all =
      generate_listops(total, min_len, max_len, max_depth, max_args, seed, progress);
  auto piece = [&](int64_t start, int64_t count) {
    return std::vector<ListOpsExample>(all.begin() + start, all.begin() + start + count);
  };
  std::filesystem::path d(dir);
  write_listops_tsv((d / "train.tsv").string(), piece(0, sizes.train));
  write_listops_tsv((d / "val.tsv").string(), piece(sizes.train, sizes.val));
  write_listops_tsv((d / "test.tsv").string(), piece(sizes.train + sizes.val, sizes.test));
}

}  // namespace tg::data
