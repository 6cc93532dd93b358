#pragma once
// Packed documents (GPTTrainOptions::pack_documents): a corpus is a stream of documents,
// and a training window of block_size tokens may hold the end of one, several whole ones and
// the start of another. Each token then carries its document (within its row) and its position
// within that document, so that the model masks attention by document and restarts positions
// (GPTForwardOptions::document_ids, position_ids), and a target that begins another document is
// ignored (nothing before it in its row may see that document).
//
// Where documents start:
//   text         after a run of blank lines (lines of spaces, tabs or '\r' only), which stay with
//                the document they end, as an end-of-text token does
//   token files  after every end-of-text id (GPT-2's <|endoftext|> = 50256, which nanoGPT's
//                prepare scripts append to each document), which ends its document
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "autograd/random.h"
#include "models/data/token_data.h"

namespace tg::data {

/// GPT-2's <|endoftext|>: the document separator of GPT-2-tokenized .bin files.
inline constexpr int64_t kGPT2EndOfText = 50256;

/// Byte offsets where the documents of `text` start (ascending, the first 0; none for "").
std::vector<int64_t> text_document_starts(std::string_view text);
/// Offsets where the documents of a token stream start: 0 and after every `eot_id` but the last
/// token.
std::vector<int64_t> token_document_starts(std::span<const uint16_t> tokens, int64_t eot_id);
std::vector<int64_t> token_document_starts(std::span<const uint32_t> tokens, int64_t eot_id);
/// The starts within [begin, end) of a stream's `starts`, shifted to count from begin; begin
/// itself starts a document (the part of one that begins before it).
std::vector<int64_t> document_starts_between(const std::vector<int64_t>& starts, int64_t begin, int64_t end);

/// What one document per row would cost, against which packing is measured.
struct PackingStats {
  int64_t documents = 0, tokens = 0;
  /// One document per row of block_size (a longer one over several rows), each row padded to
  /// block_size: the rows and the padding tokens they hold.
  int64_t padded_rows = 0, padding_tokens = 0;
};
/// For a stream of `num_tokens` tokens whose documents start at `starts`.
PackingStats packing_stats(const std::vector<int64_t>& starts, int64_t num_tokens, int64_t block_size);

/// B windows as sample_batch draws them (the same draws from gen: the same x), with
/// document_ids [B, T] (0 for the document the window starts in, counting up), position_ids
/// [B, T] (0 at the window's first token and at each document start), and y = -1 where the target
/// is the first token of another document. `starts`: document_starts of `tokens`.
TokenBatch sample_packed_batch(std::span<const uint16_t> tokens, const std::vector<int64_t>& starts,
                               int64_t block_size, int64_t batch_size, Generator& gen);
TokenBatch sample_packed_batch(std::span<const uint32_t> tokens, const std::vector<int64_t>& starts,
                               int64_t block_size, int64_t batch_size, Generator& gen);
/// The same for windows at given starts (T = block_size).
TokenBatch packed_windows_at(std::span<const uint16_t> tokens, const std::vector<int64_t>& starts,
                             const std::vector<int64_t>& window_starts, int64_t block_size);
TokenBatch packed_windows_at(std::span<const uint32_t> tokens, const std::vector<int64_t>& starts,
                             const std::vector<int64_t>& window_starts, int64_t block_size);

}  // namespace tg::data
