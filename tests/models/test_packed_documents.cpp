// Packed documents: where documents start (text, token files), the packed windows (document ids,
// positions, targets), what one document per row would pad; the decisive test, that a packed row
// gives each of its documents the logits and loss it gets alone; train_gpt with and without
// pack_documents (without it, the losses are nanoGPT's batches' bit for bit).
#include <fstream>

#include "models/tokenizers/char_tokenizer.h"
#include "models/gpt/gpt.h"
#include "models/training/gpt_train.h"
#include "models/data/packed_documents.h"
#include "ops/shape_ops.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::TempDir;

TEST(PackedDocuments, WhereDocumentsStart) {
  // Blank lines (spaces, tabs, '\r' allowed) end a document and stay with it.
  EXPECT_EQ(data::text_document_starts("a\nb\n\nc\n \n\t\r\nd\n"), (std::vector<int64_t>{0, 5, 12}));
  EXPECT_EQ(data::text_document_starts("\n\nhead\n\n\n"), std::vector<int64_t>{0});  // leading and trailing blanks
  EXPECT_EQ(data::text_document_starts("one\n\ntwo"), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(data::text_document_starts(""), std::vector<int64_t>{});
  // The end-of-text id ends its document; a last one starts none.
  const std::vector<uint16_t> tokens = {7, 50256, 3, 4, 50256, 50256, 9, 50256};
  EXPECT_EQ(data::token_document_starts(tokens, 50256), (std::vector<int64_t>{0, 2, 5, 6}));
  EXPECT_EQ(data::token_document_starts(tokens, 11), std::vector<int64_t>{0});
  // A part of a stream: the document cut by its start begins there.
  EXPECT_EQ(data::document_starts_between({0, 2, 5, 6}, 3, 8), (std::vector<int64_t>{0, 2, 3}));
  EXPECT_EQ(data::document_starts_between({0, 2, 5, 6}, 2, 5), std::vector<int64_t>{0});
}

TEST(PackedDocuments, PaddingOfOneDocumentPerRow) {
  // Documents of 5, 11 and 3 tokens in rows of 4: 2 + 3 + 1 rows, 24 slots for 19 tokens.
  data::PackingStats s = data::packing_stats({0, 5, 16}, 19, 4);
  EXPECT_EQ(s.documents, 3);
  EXPECT_EQ(s.tokens, 19);
  EXPECT_EQ(s.padded_rows, 6);
  EXPECT_EQ(s.padding_tokens, 5);
}

TEST(PackedDocuments, WindowsCarryDocumentsAndPositions) {
  std::vector<uint16_t> tokens(40);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = uint16_t(i);
  const std::vector<int64_t> starts = {0, 6, 9, 10, 25};
  data::TokenBatch b = data::packed_windows_at(tokens, starts, {4, 20}, 8);
  // Row 0: tokens 4..11: documents 0 (4, 5), 1 (6, 7, 8), 2 (9), 3 (10, 11); targets 6, 9, 10 start others.
  EXPECT_EQ(b.x.to_vector(), (std::vector<double>{4, 5, 6, 7, 8, 9, 10, 11, 20, 21, 22, 23, 24, 25, 26, 27}));
  EXPECT_EQ(b.document_ids.to_vector(), (std::vector<double>{0, 0, 1, 1, 1, 2, 3, 3, 0, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(b.position_ids.to_vector(), (std::vector<double>{0, 1, 0, 1, 2, 0, 0, 1, 0, 1, 2, 3, 4, 0, 1, 2}));
  EXPECT_EQ(b.y.to_vector(), (std::vector<double>{5, -1, 7, 8, -1, -1, 11, 12, 21, 22, 23, 24, -1, 26, 27, 28}));
  // Sampled windows are sample_batch's, with the same draws.
  Generator g1(3), g2(3);
  data::TokenBatch plain = data::sample_batch(tokens, 8, 5, g1);
  data::TokenBatch packed = data::sample_packed_batch(tokens, starts, 8, 5, g2);
  EXPECT_EQ(packed.x.to_vector(), plain.x.to_vector());
  EXPECT_EQ(g1.offset(), g2.offset());
  EXPECT_TG_ERROR(data::packed_windows_at(tokens, starts, {33}, 8), "a window of 8 + 1 tokens at 33 runs past the 40");
}

models::GPTConfig tiny_config(const std::string& attention, int64_t n_positions) {
  models::GPTConfig c;
  c.vocab_size = 11, c.n_positions = n_positions, c.n_embd = 16, c.n_layer = 2, c.n_head = 2, c.dropout = 0;
  c.attention = models::GPTAttention::parse(attention);
  return c;
}

// x[b, s:e] as a batch of one.
Tensor piece(const Tensor& x, int64_t b, int64_t s, int64_t e) { return narrow(narrow(x, 0, b, 1), 1, s, e - s); }

// The decisive test: two rows of 150 tokens (more than one 128-block of the mask), documents cut
// by the windows' starts, whole ones and a cut one at the end; every document's logits and loss
// as when it is run alone (its own positions from 0, no mask but the model's).
void expect_each_document_as_alone(const std::string& attention) {
  SCOPED_TRACE(attention);
  const int64_t T = 150;
  std::vector<uint16_t> tokens(400);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = uint16_t((i * 7 + i / 13) % 11);
  const std::vector<int64_t> starts = {0, 30, 67, 170, 171, 240, 330};
  data::TokenBatch batch = data::packed_windows_at(tokens, starts, {10, 160}, T);
  Generator gen(4);
  models::GPT model(tiny_config(attention, T), gen);
  models::GPTForwardOptions packed;
  packed.position_ids = batch.position_ids, packed.document_ids = batch.document_ids;
  models::GPTOutput out = model.forward(batch.x, batch.y, packed);

  double loss_sum = 0;
  int64_t targets = 0, documents = 0;
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t* doc = batch.document_ids.data<int64_t>() + b * T;
    for (int64_t s = 0, e; s < T; s = e) {
      for (e = s + 1; e < T && doc[e] == doc[s];) ++e;
      SCOPED_TRACE(fmt::format("row {}, tokens {}..{}", b, s, e - 1));
      Tensor y = piece(batch.y, b, s, e);
      models::GPTOutput alone = model.forward(piece(batch.x, b, s, e), y);
      testing::expect_close(piece(out.logits, b, s, e), alone.logits, 1e-5, 1e-6);
      int64_t n = 0;
      for (double t : y.to_vector()) n += t >= 0;
      if (n > 0) loss_sum += alone.loss.item() * double(n), targets += n;
      ++documents;
    }
  }
  EXPECT_EQ(documents, 7);
  EXPECT_NEAR(out.loss.item(), loss_sum / double(targets), 1e-5 * out.loss.item());
}

TEST(PackedDocuments, EachDocumentOfARowGetsWhatItGetsAlone) {
  for (const char* attention : {"dense", "flash", "sliding:20", "flex:causal", "flex:alibi", "flex:softcap:5"})
    expect_each_document_as_alone(attention);
}

TEST(PackedDocuments, ForwardErrors) {
  Generator gen(1);
  models::GPT model(tiny_config("dense", 8), gen);
  Tensor idx = zeros({2, 4}, DType::i64);
  models::GPTForwardOptions o;
  o.position_ids = zeros({2, 3}, DType::i64);
  EXPECT_TG_ERROR(model.forward(idx, Tensor(), o), "GPT: position_ids must be i64 [B, T] like idx [2, 4], got i64 [2, 3]");
  o.position_ids = tensor({0, 1, 2, 3, 0, 1, 8, 3}, {2, 4}, DType::i64);
  EXPECT_TG_ERROR(model.forward(idx, Tensor(), o), "GPT: position_ids[1, 2] = 8 is outside [0, n_positions = 8)");
  o.position_ids = Tensor();
  o.document_ids = zeros({2, 4});
  EXPECT_TG_ERROR(model.forward(idx, Tensor(), o), "GPT: document_ids must be i64 [B, T] like idx [2, 4], got f32");
  o.document_ids = zeros({2, 4}, DType::i64);
  models::KVCache cache = model.make_cache(2);
  o.cache = &cache;
  NoGradGuard no_grad;
  EXPECT_TG_ERROR(model.forward(idx, Tensor(), o), "GPT: document_ids are for packed sequences");
  models::GPT linear(tiny_config("linear", 8), gen);
  o.cache = nullptr;
  EXPECT_TG_ERROR(linear.forward(idx, Tensor(), o), "the linear variant has no attention mask");
}

// --- train_gpt ------------------------------------------------------------------------------

// Paragraphs of varied lengths, each ending with a blank line; their lengths in `lengths`.
std::string write_paragraphs(const TempDir& dir, std::vector<int64_t>* lengths = nullptr) {
  std::string text;
  for (int i = 0; i < 160; ++i) {
    std::string p = fmt::format("speaker {}:\n{}\n\n", i % 7, std::string(size_t(3 + i * 13 % 40), char('a' + i % 5)));
    if (lengths) lengths->push_back(int64_t(p.size()));
    text += p;
  }
  std::ofstream(dir / "paragraphs.txt") << text;
  return dir / "paragraphs.txt";
}

models::GPTTrainOptions tiny_run(const std::string& data, const std::string& out) {
  models::GPTTrainOptions o;
  o.data = data, o.out = out;
  o.n_layer = 2, o.n_head = 2, o.n_embd = 16, o.block_size = 32, o.optim.batch_size = 4;
  o.optim.max_iters = 6, o.optim.eval_interval = 0, o.optim.eval_iters = 3, o.optim.warmup_iters = 0;
  o.optim.progress = false;
  return o;
}

std::vector<std::string> csv_losses(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const size_t a = line.find(',') + 1;
    out.push_back(line.substr(a, line.find(',', a) - a));
  }
  return out;
}

// Without pack_documents nothing changes: with SGD at a learning rate that moves no f32 weight,
// every step's loss and the validation loss are those of the initial model on nanoGPT's windows
// (sample_batch), computed here without train_gpt.
TEST(PackedDocuments, WithoutTheFlagTheLossesAreNanoGPTWindowsBitForBit) {
  TempDir dir;
  std::string data = write_paragraphs(dir);
  models::GPTTrainOptions o = tiny_run(data, dir / "ck");
  o.optim.optimizer = "sgd", o.optim.lr = 1e-300, o.optim.min_lr = 0, o.optim.grad_clip = 0;
  o.optim.lr_schedule = "constant", o.optim.log = dir / "log.csv";
  models::GPTTrainResult r = models::train_gpt(o);
  EXPECT_TRUE(r.packing.empty());

  std::string text;
  {
    std::ifstream in(data);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  models::CharTokenizer tok = models::CharTokenizer::from_text(text);
  std::vector<uint16_t> ids;
  for (int64_t id : tok.encode(text)) ids.push_back(uint16_t(id));
  const size_t n = ids.size() * 9 / 10;
  std::vector<uint16_t> train(ids.begin(), ids.begin() + int64_t(n)), val(ids.begin() + int64_t(n), ids.end());
  models::GPTConfig c;
  c.vocab_size = tok.vocab_size(), c.n_positions = 32, c.n_layer = 2, c.n_head = 2, c.n_embd = 16, c.dropout = 0;
  Generator init(o.optim.seed), data_gen(o.optim.seed + 1);
  models::GPT model(c, init);
  std::vector<std::string> expected;
  double last = 0;
  for (int step = 0; step < 6; ++step) {  // train_gpt's draws: a global batch per step
    Generator mine(data_gen.seed());
    mine.set_offset(data_gen.advance(4));
    data::TokenBatch b = data::sample_batch(train, 32, 4, mine);
    last = model.forward(b.x, b.y).loss.item();
    expected.push_back(fmt::format("{:.6f}", last));
  }
  EXPECT_EQ(csv_losses(o.optim.log), expected);
  EXPECT_EQ(r.train_loss, last);  // bit for bit
  Generator eval_gen(o.optim.seed + 3);
  double val_loss = 0;
  model.eval();
  NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) {
    data::TokenBatch b = data::sample_batch(val, 32, 4, eval_gen);
    val_loss += model.forward(b.x, b.y).loss.item();
  }
  EXPECT_EQ(*r.val_loss, val_loss / 3);
}

TEST(PackedDocuments, TrainingPacksLogsThePaddingSavedAndResumesPacked) {
  TempDir dir;
  std::vector<int64_t> lengths;
  std::string data = write_paragraphs(dir, &lengths);
  models::GPTTrainOptions o = tiny_run(data, dir / "ck");
  o.pack_documents = true;
  o.optim.max_iters = 30, o.optim.lr = 3e-3;
  o.optim.log = dir / "log.csv";
  models::GPTTrainResult r = models::train_gpt(o);

  // One document per row of 32, padded, over the training 90% (the last paragraph there cut).
  int64_t total = 0;
  for (int64_t l : lengths) total += l;
  const int64_t n = total * 9 / 10;
  int64_t documents = 0, rows = 0;
  for (int64_t at = 0, i = 0; at < n; at += lengths[size_t(i++)]) {
    ++documents;
    rows += (std::min(lengths[size_t(i)], n - at) + 31) / 32;
  }
  EXPECT_NE(r.packing.find(fmt::format("`pack_documents`: {} documents in {} training tokens (split at blank lines)",
                                       documents, n)),
            std::string::npos)
      << r.packing;
  EXPECT_NE(r.packing.find(fmt::format("would take {} rows holding {} padding tokens", rows, rows * 32 - n)),
            std::string::npos)
      << r.packing;
  EXPECT_NE(r.packing.find("`attention` dense runs as flex:causal with the document mask"), std::string::npos);
  std::vector<std::string> losses = csv_losses(o.optim.log);
  ASSERT_EQ(losses.size(), 30u);
  EXPECT_LT(std::stod(losses.back()), std::stod(losses.front()) - 0.5);  // it learns
  ASSERT_TRUE(r.val_loss.has_value());
  EXPECT_TRUE(std::isfinite(*r.val_loss));

  // A resumed run keeps packing unless told otherwise.
  models::GPTTrainOptions resumed = tiny_run(data, dir / "ck");
  resumed.resume = dir / "ck";
  models::adopt_resumed_options(resumed, [](const std::string&) { return false; });
  EXPECT_TRUE(resumed.pack_documents);
  resumed.pack_documents = false;
  resumed.optim.max_iters = 40;
  EXPECT_TG_ERROR(models::train_gpt(resumed), "`pack_documents` true (given false)");
}

TEST(PackedDocuments, TrainingErrors) {
  TempDir dir;
  std::string data = write_paragraphs(dir);
  models::GPTTrainOptions o = tiny_run(data, dir / "ck");
  o.pack_documents = true;
  o.attention = "linear";
  EXPECT_TG_ERROR(models::train_gpt(o), "`pack_documents`: `attention` linear has no attention mask");
  // One document: nothing to pack.
  o.attention = "dense";
  std::ofstream(dir / "lines.txt") << std::string(400, 'x') + "\nend\n";
  o.data = dir / "lines.txt";
  EXPECT_TG_ERROR(models::train_gpt(o), "are one document (no blank line between its lines)");
  std::vector<uint16_t> ids(600);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = uint16_t(i % 50);
  data::write_tokens(dir / "tokens.bin", ids);
  o.data = dir / "tokens.bin";
  EXPECT_TG_ERROR(models::train_gpt(o), "no end-of-text id 50256 before the last token");
  // With end-of-text ids the .bin packs.
  for (size_t i = 40; i < ids.size(); i += 70) ids[i] = 50256;
  data::write_tokens(dir / "tokens.bin", ids);
  o.optim.max_iters = 2;
  models::GPTTrainResult r = models::train_gpt(o);
  EXPECT_NE(r.packing.find("9 documents in 540 training tokens (split after end-of-text id 50256)"), std::string::npos)
      << r.packing;
}

}  // namespace
}  // namespace tg
