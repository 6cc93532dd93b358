// ListOps as LRA defines it: the evaluator on hand-made expressions, the generator's lengths,
// depths, argument counts and LRA text format (checked by an independent renderer), agreement of
// every generated target with the evaluator, the TSV writer/reader, the vocabulary, and the
// classification dataset's batches and epochs.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "models/data/listops.h"
#include "models/data/token_data.h"
#include "test_util.h"

namespace tg {
namespace {

namespace fs = std::filesystem;
using data::listops_value;

using testing::TempDir;

TEST(ListOps, EvaluatesHandMadeExpressions) {
  EXPECT_EQ(listops_value(std::string_view("( ( ( [MAX 2 ) 9 ) ] )")), 9);  // the example
  EXPECT_EQ(listops_value(std::string_view("[MIN 4 7 3 ]")), 3);
  EXPECT_EQ(listops_value(std::string_view("[MED 7 1 3 ]")), 3);     // odd count: the middle
  EXPECT_EQ(listops_value(std::string_view("[MED 2 5 ]")), 3);       // np.median 3.5, int() -> 3
  EXPECT_EQ(listops_value(std::string_view("[MED 4 1 2 3 ]")), 2);   // 2.5 -> 2
  EXPECT_EQ(listops_value(std::string_view("[MED 9 8 ]")), 8);       // 8.5 -> 8
  EXPECT_EQ(listops_value(std::string_view("[SM 5 7 9 ]")), 1);      // 21 mod 10
  EXPECT_EQ(listops_value(std::string_view("[SM 0 0 ]")), 0);
  EXPECT_EQ(listops_value(std::string_view("7")), 7);                // a bare digit
  EXPECT_EQ(listops_value(std::string_view("[MAX 2 9 [MIN 4 7 ] 0 ]")), 9);
  EXPECT_EQ(listops_value(std::string_view("[SM [MAX 3 8 ] [MED 1 9 4 ] 5 ]")), 7);  // 8 + 4 + 5
  // [MIN 3 [MAX 1 5 ] ] in LRA's text: each argument application gets a pair of parentheses.
  EXPECT_EQ(listops_value(std::string_view("( ( ( [MIN 3 ) ( ( ( [MAX 1 ) 5 ) ] ) ) ] )")), 3);
  EXPECT_EQ(listops_value(std::string_view("[MED [SM 9 9 ] [MIN 6 7 ] 1 2 ]")), 4);  // 8 6 1 2 -> (2+6)/2
}

TEST(ListOps, EvaluatorErrors) {
  EXPECT_TG_ERROR(listops_value(std::string_view("[MAX 2 x ]")), "unknown token 'x' at position 2");
  EXPECT_TG_ERROR(listops_value(std::string_view("[MAX 12 ]")), "unknown token '12'");
  EXPECT_TG_ERROR(listops_value(std::string_view("]")), "']' at position 0 closes no operator");
  EXPECT_TG_ERROR(listops_value(std::string_view("[MAX 2 3")), "[MAX is never closed");
  EXPECT_TG_ERROR(listops_value(std::string_view("[MAX 2 ] 3")), "token '3' at position 3 follows the end");
  EXPECT_TG_ERROR(listops_value(std::string_view("( )")), "the expression is empty");
  EXPECT_TG_ERROR(listops_value(std::string_view("[SM ]")), "[SM closed at position 1 without arguments");
}

TEST(ListOps, TokensDropParentheses) {
  EXPECT_EQ(data::listops_tokens("( ( ( [MAX 2 ) 9 ) ] )"), (std::vector<std::string>{"[MAX", "2", "9", "]"}));
  EXPECT_EQ(data::listops_tokens("  [SM\t1 \r\n 2 ] "), (std::vector<std::string>{"[SM", "1", "2", "]"}));
}

// LRA's to_string, written independently from the generator: a node with k arguments is
// "( " x (k+1), the operator, then " a_i )" for each argument, then " ] )".
struct Rendered {
  std::string text;
  int depth = 0;  // operators nested, 0 for a digit
  int max_args = 0, min_args = 1 << 30;
};
Rendered render(const std::vector<std::string>& tokens, size_t& i) {
  const std::string& t = tokens.at(i++);
  if (t.size() == 1 && std::isdigit(static_cast<unsigned char>(t[0]))) return {t, 0};
  std::vector<Rendered> args;
  while (tokens.at(i) != "]") args.push_back(render(tokens, i));
  ++i;  // "]"
  Rendered r;
  for (size_t k = 0; k <= args.size(); ++k) r.text += "( ";
  r.text += t;
  r.max_args = r.min_args = int(args.size());
  for (const Rendered& a : args) {
    r.text += " " + a.text + " )";
    r.depth = std::max(r.depth, a.depth);
    r.max_args = std::max(r.max_args, a.max_args);
    r.min_args = std::min(r.min_args, a.min_args);
  }
  r.text += " ] )";
  r.depth += 1;
  return r;
}

TEST(ListOps, GeneratedExamplesFollowLRA) {
  const int64_t n = 300, min_len = 20, max_len = 120, max_depth = 5, max_args = 6;
  std::vector<data::ListOpsExample> ex = data::generate_listops(n, min_len, max_len, max_depth, max_args, 11);
  ASSERT_EQ(int64_t(ex.size()), n);
  std::set<std::string> distinct;
  std::set<int> targets, ops_at_root;
  for (const auto& e : ex) {
    std::vector<std::string> tokens = data::listops_tokens(e.source);
    EXPECT_EQ(e.length, int64_t(tokens.size()));  // LRA's length: no parentheses
    EXPECT_GT(e.length, min_len);                  // strict, as LRA
    EXPECT_LT(e.length, max_len);
    EXPECT_EQ(e.target, listops_value(e.source));
    size_t i = 0;
    Rendered r = render(tokens, i);
    EXPECT_EQ(i, tokens.size());
    EXPECT_EQ(r.text, e.source);                   // LRA's parentheses exactly
    EXPECT_LE(r.depth, max_depth - 1);             // depth max_depth is always a digit
    EXPECT_GE(r.min_args, 2);
    EXPECT_LE(r.max_args, max_args);
    distinct.insert(e.source);
    targets.insert(e.target);
    ops_at_root.insert(int(tokens[0][2]));         // '[MIN' vs '[MAX' vs '[MED' vs '[SM': 3rd char I/A/E/M
  }
  EXPECT_EQ(distinct.size(), ex.size());
  EXPECT_EQ(targets.size(), 10u);
  EXPECT_EQ(ops_at_root.size(), 4u);
  // Reproducible for a seed, different for another.
  auto again = data::generate_listops(n, min_len, max_len, max_depth, max_args, 11);
  auto other = data::generate_listops(n, min_len, max_len, max_depth, max_args, 12);
  EXPECT_EQ(again[0].source, ex[0].source);
  EXPECT_EQ(again[n - 1].source, ex[n - 1].source);
  EXPECT_NE(other[0].source, ex[0].source);
}

TEST(ListOps, LengthLimitsAndSettings) {
  // max_depth 1: only digits (length 1), so 0 < L < 2 gives exactly the ten digits.
  auto digits = data::generate_listops(10, 0, 2, 1, 10, 0);
  std::set<std::string> seen;
  for (const auto& e : digits) seen.insert(e.source);
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_TG_ERROR(data::generate_listops(11, 0, 2, 1, 10, 0), "found 10 of 11");
  // max_depth 2, max_args 2: one operator over two digits, length 4 exactly.
  for (const auto& e : data::generate_listops(30, 3, 5, 2, 2, 0)) EXPECT_EQ(e.length, 4);
  EXPECT_EQ(data::listops_longest(1, 10), 1);
  EXPECT_EQ(data::listops_longest(3, 10), 2 + 10 * (2 + 10));
  EXPECT_TG_ERROR(data::generate_listops(1, 5, 6, 3, 3, 0), "max_len must be at least min_len + 2");
  EXPECT_TG_ERROR(data::generate_listops(1, 0, 10, 0, 3, 0), "max_depth must be in [1, 10000]");
  EXPECT_TG_ERROR(data::generate_listops(1, 0, 10, 3, 1, 0), "max_args must be in [2, 10000]");
  EXPECT_TG_ERROR(data::generate_listops(1, 14, 100, 2, 10, 0), "the longest has 12 tokens");
  EXPECT_TG_ERROR(data::generate_listops(-1, 0, 10, 3, 3, 0), "n must be >= 0");
  // Progress is reported and ends at the total.
  int64_t last = -1;
  data::generate_listops(250, 3, 50, 4, 4, 0, [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 250);
    last = done;
  });
  EXPECT_EQ(last, 250);
}

TEST(ListOps, TsvRoundTripAndLayout) {
  TempDir dir("listops_tsv");
  auto ex = data::generate_listops(40, 4, 40, 4, 4, 3);
  data::write_listops_tsv(dir.file("a.tsv"), ex);
  std::string text = read_file_bytes(dir.file("a.tsv"));
  EXPECT_EQ(text.substr(0, 14), "Source\tTarget\n");
  EXPECT_EQ(text.substr(14, ex[0].source.size() + 3), ex[0].source + "\t" + std::to_string(ex[0].target) + "\n");
  auto back = data::read_listops_tsv(dir.file("a.tsv"));
  ASSERT_EQ(back.size(), ex.size());
  for (size_t i = 0; i < ex.size(); ++i) {
    EXPECT_EQ(back[i].source, ex[i].source);
    EXPECT_EQ(back[i].target, ex[i].target);
    EXPECT_EQ(back[i].length, ex[i].length);
  }
  // CRLF lines (Python's csv writer) read the same.
  std::ofstream(dir.file("crlf.tsv"), std::ios::binary) << "Source\tTarget\r\n( ( ( [MAX 2 ) 9 ) ] )\t9\r\n";
  auto crlf = data::read_listops_tsv(dir.file("crlf.tsv"));
  ASSERT_EQ(crlf.size(), 1u);
  EXPECT_EQ(crlf[0].source, "( ( ( [MAX 2 ) 9 ) ] )");
  EXPECT_EQ(crlf[0].length, 4);
}

TEST(ListOps, TsvErrorsNameFileAndLine) {
  TempDir dir("listops_bad");
  auto bad = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.file(name), std::ios::binary) << text;
    return dir.file(name);
  };
  std::string f = bad("h.tsv", "Input\tLabel\n[MAX 1 2 ]\t2\n");
  EXPECT_TG_ERROR(data::read_listops_tsv(f), f + ":1: expected the header");
  f = bad("t.tsv", "Source\tTarget\n[MAX 1 2 ]\t2\n[MIN 1 2 ]\tx\n");
  EXPECT_TG_ERROR(data::read_listops_tsv(f), f + ":3: the target 'x' is not a ListOps value 0-9");
  f = bad("r.tsv", "Source\tTarget\n[MAX 1 2 ]\t12\n");
  EXPECT_TG_ERROR(data::read_listops_tsv(f), ":2: the target '12'");
  f = bad("n.tsv", "Source\tTarget\n[MAX 1 2 ] 2\n");
  EXPECT_TG_ERROR(data::read_listops_tsv(f), ":2: expected two tab-separated fields");
  f = bad("e.tsv", "");
  EXPECT_TG_ERROR(data::read_listops_tsv(f), "the file is empty");
  EXPECT_TG_ERROR(data::read_listops_tsv(dir.file("none.tsv")), "cannot read " + dir.file("none.tsv"));
}

TEST(ListOps, SplitsAreDisjoint) {
  TempDir dir("listops_splits");
  std::string out = (dir.path / "sub").string();  // created
  data::write_listops_splits(out, {50, 10, 12}, 4, 60, 5, 5, 9);
  auto train = data::read_listops_tsv(out + "/train.tsv");
  auto val = data::read_listops_tsv(out + "/val.tsv");
  auto test = data::read_listops_tsv(out + "/test.tsv");
  EXPECT_EQ(train.size(), 50u);
  EXPECT_EQ(val.size(), 10u);
  EXPECT_EQ(test.size(), 12u);
  std::set<std::string> all;
  for (const auto* split : {&train, &val, &test})
    for (const auto& e : *split) {
      all.insert(e.source);
      EXPECT_EQ(e.target, listops_value(e.source));
    }
  EXPECT_EQ(all.size(), 72u);
}

TEST(ListOps, VocabularyAndEncoding) {
  data::Vocab v = data::listops_vocab();
  EXPECT_EQ(v.size(), 17);
  EXPECT_EQ(v.pad_id(), 0);
  EXPECT_EQ(v.unk_id(), 1);
  EXPECT_EQ(v.token(v.id("[MED")), "[MED");
  EXPECT_EQ(v.id("7"), v.id("0") + 7);
  EXPECT_TRUE(v.contains("]"));
  EXPECT_FALSE(v.contains("("));
  std::vector<data::ListOpsExample> ex = {{"( ( ( [MAX 2 ) 9 ) ] )", 9, 4}, {"( ( ( [SM 2 ) 9 ) ] )", 1, 4},
                                          {"( ( [FIRST 5 ) ] )", 5, 3}};
  data::ClassificationDataset ds = data::encode_listops(ex, v);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds[0].ids, (std::vector<int64_t>{v.id("[MAX"), v.id("2"), v.id("9"), v.id("]")}));
  EXPECT_EQ(ds[0].label, 9);
  EXPECT_EQ(ds[2].ids[0], v.unk_id());  // an unknown word
  data::ClassificationDataset cut = data::encode_listops(ex, v, 2);  // LRA's truncation
  EXPECT_EQ(cut[1].ids, (std::vector<int64_t>{v.id("[SM"), v.id("2")}));
  // The vocabulary survives JSON.
  TempDir dir("vocab");
  v.save(dir.file("vocab.json"));
  EXPECT_TRUE(data::Vocab::load(dir.file("vocab.json")) == v);
  EXPECT_TG_ERROR(data::Vocab::from_json("{\"tokens\": [\"a\", \"a\"]}", "v.json"), "v.json: Vocab: token 'a' appears twice");
  EXPECT_TG_ERROR(data::Vocab::from_json("[1]", "v.json"), "v.json: not a JSON object");
  EXPECT_TG_ERROR(data::Vocab::from_json("{\"tokens\": [\"a\"]}", "v.json"), "the padding token '<pad>' is not in");
  EXPECT_TG_ERROR(v.token(17), "id 17 is outside [0, 17)");
}

TEST(ClassificationData, BatchesPadToTheLongest) {
  data::ClassificationDataset ds({{{5, 6, 7}, 1}, {{8}, 0}, {{4, 4, 4, 4, 4}, 2}}, /*pad_id=*/0);
  EXPECT_EQ(ds.max_length(), 5);
  EXPECT_EQ(ds.num_classes(), 3);
  EXPECT_EQ(ds.label_counts(3), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_NEAR(ds.majority_accuracy(), 1.0 / 3.0, 1e-12);
  std::vector<int64_t> idx = {0, 1};
  data::ClassificationBatch b = ds.batch(idx);
  EXPECT_EQ(b.ids.shape(), Shape({2, 3}));
  EXPECT_EQ(b.ids.to_vector(), std::vector<double>({5, 6, 7, 8, 0, 0}));
  EXPECT_EQ(b.lengths, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(b.labels.to_vector(), std::vector<double>({1, 0}));
  EXPECT_TG_ERROR(ds.label_counts(2), "has label 2, not below n_classes=2");
  EXPECT_TG_ERROR(data::ClassificationDataset({{{}, 0}}, 0), "example 0 has no tokens");
  EXPECT_TG_ERROR(ds[3], "index 3 is outside [0, 3)");
}

TEST(ClassificationData, EpochSamplerShufflesReproduciblyAndResumes) {
  data::EpochSampler s(10, 4, /*shuffle=*/true, /*seed=*/5);
  EXPECT_EQ(s.batches_per_epoch(), 3);
  std::vector<std::vector<int64_t>> run;
  for (int i = 0; i < 9; ++i) run.push_back(s.next());  // three epochs
  for (int e = 0; e < 3; ++e) {
    std::vector<int64_t> epoch;
    for (int i = 0; i < 3; ++i) epoch.insert(epoch.end(), run[e * 3 + i].begin(), run[e * 3 + i].end());
    EXPECT_EQ(run[e * 3 + 2].size(), 2u);  // the last batch is smaller
    std::vector<int64_t> sorted = epoch;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(sorted[size_t(i)], i);  // each epoch visits all once
  }
  EXPECT_NE(run[0], run[3]);  // reshuffled per epoch
  // Resuming from (epoch 1, position 4) continues the same sequence.
  data::EpochSampler r(10, 4, true, 5);
  r.set_state(1, 4);
  EXPECT_EQ(r.next(), run[4]);
  EXPECT_EQ(r.next(), run[5]);
  EXPECT_EQ(r.next(), run[6]);
  // Without shuffling: file order; with drop_last the short batch is skipped.
  data::EpochSampler seq(5, 2, false, 0, /*drop_last=*/true);
  EXPECT_EQ(seq.next(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(seq.next(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(seq.next(), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(seq.epoch(), 1);
  EXPECT_EQ(data::sequential_batches(5, 2).back(), (std::vector<int64_t>{4}));
  // One shuffled epoch from a generator: a permutation in batches, reproducible.
  Generator g1(9), g2(9);
  auto batches = data::shuffled_batches(7, 3, g1);
  EXPECT_EQ(batches, data::shuffled_batches(7, 3, g2));
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2].size(), 1u);
  std::vector<int64_t> flat;
  for (const auto& b : batches) flat.insert(flat.end(), b.begin(), b.end());
  std::sort(flat.begin(), flat.end());
  EXPECT_EQ(flat, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(data::shuffled_batches(7, 3, g1, /*drop_last=*/true).size(), 2u);
}

}  // namespace
}  // namespace tg
