#pragma once
// ListOps as the Long Range Arena defines it (Tay et al. 2021, after Nangia & Bowman 2018;
// LRA's lra_benchmarks/data/listops.py). An expression nests the operators
//   [MIN  [MAX  [MED (median, of an even count the mean of the middle two rounded down, as
//   int(np.median))  [SM (sum modulo 10)
// over digits 0-9; its value (0-9) is the class to predict. The generator follows LRA's:
// starting at depth 1, a node is an operator with probability 0.25 while depth < max_depth
// (else a digit); an operator takes 2..max_args arguments (uniform). LRA's length counts the
// tokens without parentheses (operators, digits, ']'); an example is kept when
// min_len < length < max_len (both strict, as LRA) and it is not a duplicate.
// The source is written with LRA's parentheses, one pair per (function, argument) application:
//   [MAX 2 9]  ->  "( ( ( [MAX 2 ) 9 ) ] )"
// and files are tab-separated with the header "Source\tTarget".
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "models/data/classification_data.h"
#include "models/tokenizers/vocab.h"

namespace tg::data {

struct ListOpsExample {
  std::string source;  ///< LRA's text with parentheses
  int target = 0;      ///< the expression's value, 0..9
  int64_t length = 0;  ///< tokens without parentheses (LRA's length)
  int64_t line = 0;    ///< the line of the TSV file it was read from (1 = the header), 0 if generated
};

/// Called as generation proceeds with (examples kept so far, examples wanted).
using ListOpsProgress = std::function<void(int64_t done, int64_t total)>;

/// The longest expression (in LRA's tokens) max_depth and max_args allow.
int64_t listops_longest(int64_t max_depth, int64_t max_args);

/// Checks generator settings; tg::Error naming the setting (min_len, max_len, max_depth,
/// max_args) and, when no length in (min_len, max_len) can be generated, why.
void check_listops_settings(int64_t min_len, int64_t max_len, int64_t max_depth, int64_t max_args);

/// n distinct examples with min_len < length < max_len, reproducible for a seed (Philox).
/// tg::Error when the settings are invalid or distinct examples of these lengths run out.
std::vector<ListOpsExample> generate_listops(int64_t n, int64_t min_len, int64_t max_len, int64_t max_depth,
                                             int64_t max_args, uint64_t seed,
                                             const ListOpsProgress& progress = {});

/// The whitespace-separated words of a source, without "(" and ")": LRA's tokens.
std::vector<std::string> listops_tokens(std::string_view source);
/// The value of an expression given as tokens or as source text; tg::Error naming the problem
/// (unknown token, an operator without arguments, unbalanced ']', trailing tokens).
int listops_value(const std::vector<std::string>& tokens);
int listops_value(std::string_view source);

/// The vocabulary: <pad>, <unk>, the digits 0-9, [MIN, [MAX, [MED, [SM and ].
Vocab listops_vocab();

/// Writes examples as LRA's TSV ("Source\tTarget" header, one example a line), atomically.
void write_listops_tsv(const std::string& path, const std::vector<ListOpsExample>& examples);
/// Reads such a file (LF or CRLF lines); length is recomputed from the tokens. tg::Error naming
/// the file and line for a wrong header, a line without exactly one tab, or a target not 0-9.
std::vector<ListOpsExample> read_listops_tsv(const std::string& path);

/// Token ids and labels of examples (unknown words map to <unk>); with max_len > 0, sequences
/// are cut to their first max_len tokens, as LRA's input pipeline does.
ClassificationDataset encode_listops(const std::vector<ListOpsExample>& examples, const Vocab& vocab,
                                     int64_t max_len = 0);
/// read_listops_tsv + encode_listops.
ClassificationDataset load_listops(const std::string& path, const Vocab& vocab, int64_t max_len = 0);

/// Sizes of the three splits written by write_listops_splits.
struct ListOpsSplitSizes {
  int64_t train = 96000, val = 2000, test = 2000;  // LRA's
};

/// Generates train + val + test distinct examples (no example in two splits, as LRA draws them
/// from one set) and writes dir/train.tsv, dir/val.tsv, dir/test.tsv (creating dir).
void write_listops_splits(const std::string& dir, const ListOpsSplitSizes& sizes, int64_t min_len,
                          int64_t max_len, int64_t max_depth, int64_t max_args, uint64_t seed,
                          const ListOpsProgress& progress = {});

}  // namespace tg::data
