#include "models/data/packed_documents.h"

#include <algorithm>

#include "autograd/error.h"

namespace tg::data {
namespace {

bool is_blank_line(std::string_view line) {
  return line.find_first_not_of(" \t\r\n") == std::string_view::npos;  // the line with its newline
}

}  // namespace

std::vector<int64_t> text_document_starts(std::string_view text) {
  std::vector<int64_t> starts;
  if (text.empty()) return starts;
  starts.push_back(0);
  bool seen_text = false, after_blank = false;  // a non-blank line in this document; blank lines since
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    end = end == std::string_view::npos ? text.size() : end + 1;
    if (is_blank_line(text.substr(at, end - at))) {
      after_blank = seen_text;
    } else {
      if (after_blank) starts.push_back(int64_t(at));  // the first line after the blank ones
      seen_text = true, after_blank = false;
    }
    at = end;
  }
  return starts;
}

namespace {

template <class Id>
std::vector<int64_t> document_starts_of(std::span<const Id> tokens, int64_t eot_id) {
  std::vector<int64_t> starts;
  if (tokens.empty()) return starts;
  starts.push_back(0);
  for (size_t i = 0; i + 1 < tokens.size(); ++i)
    if (int64_t(tokens[i]) == eot_id) starts.push_back(int64_t(i + 1));
  return starts;
}

// Document ids and positions of `batch`'s windows (at window_starts, T tokens each), and y = -1
// where a target starts another document.
void mark_documents(TokenBatch& batch, const std::vector<int64_t>& starts, const std::vector<int64_t>& window_starts,
                    int64_t T) {
  TG_CHECK(!starts.empty() && starts[0] == 0, "packed_windows_at: the document starts must begin with 0");
  const int64_t B = batch.x.size(0), n = int64_t(starts.size());
  batch.document_ids = empty({B, T}, DType::i64);
  batch.position_ids = empty({B, T}, DType::i64);
  int64_t* doc = batch.document_ids.data<int64_t>();
  int64_t* pos = batch.position_ids.data<int64_t>();
  int64_t* y = batch.y.data<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t w = window_starts[size_t(b)];
    // next: the first document start after the token at hand.
    int64_t next = std::upper_bound(starts.begin(), starts.end(), w) - starts.begin();
    int64_t d = 0, p = 0;
    for (int64_t t = 0; t < T; ++t, ++p) {
      if (next < n && starts[size_t(next)] == w + t) ++d, p = 0, ++next;  // a document starts here
      doc[b * T + t] = d;
      pos[b * T + t] = p;
      if (next < n && starts[size_t(next)] == w + t + 1) y[b * T + t] = -1;  // the target starts another
    }
  }
}

}  // namespace

std::vector<int64_t> token_document_starts(std::span<const uint16_t> tokens, int64_t eot_id) {
  return document_starts_of(tokens, eot_id);
}

std::vector<int64_t> token_document_starts(std::span<const uint32_t> tokens, int64_t eot_id) {
  return document_starts_of(tokens, eot_id);
}

std::vector<int64_t> document_starts_between(const std::vector<int64_t>& starts, int64_t begin, int64_t end) {
  TG_CHECK(0 <= begin && begin <= end, "document_starts_between: [{}, {}) is not a range", begin, end);
  std::vector<int64_t> out;
  if (begin == end) return out;
  out.push_back(0);
  for (auto it = std::upper_bound(starts.begin(), starts.end(), begin); it != starts.end() && *it < end; ++it)
    out.push_back(*it - begin);
  return out;
}

PackingStats packing_stats(const std::vector<int64_t>& starts, int64_t num_tokens, int64_t block_size) {
  TG_CHECK(block_size >= 1, "packing_stats: block size must be positive, got {}", block_size);
  PackingStats s;
  s.documents = int64_t(starts.size());
  s.tokens = num_tokens;
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t length = (i + 1 < starts.size() ? starts[i + 1] : num_tokens) - starts[i];
    s.padded_rows += (length + block_size - 1) / block_size;
  }
  s.padding_tokens = s.padded_rows * block_size - num_tokens;
  return s;
}

TokenBatch packed_windows_at(std::span<const uint16_t> tokens, const std::vector<int64_t>& starts,
                             const std::vector<int64_t>& window_starts, int64_t T) {
  TokenBatch batch = windows_at(tokens, window_starts, T);
  mark_documents(batch, starts, window_starts, T);
  return batch;
}

TokenBatch packed_windows_at(std::span<const uint32_t> tokens, const std::vector<int64_t>& starts,
                             const std::vector<int64_t>& window_starts, int64_t T) {
  TokenBatch batch = windows_at(tokens, window_starts, T);
  mark_documents(batch, starts, window_starts, T);
  return batch;
}

TokenBatch sample_packed_batch(std::span<const uint16_t> tokens, const std::vector<int64_t>& starts,
                               int64_t block_size, int64_t batch_size, Generator& gen) {
  std::vector<int64_t> windows = sample_window_starts(int64_t(tokens.size()), block_size, batch_size, gen);
  return packed_windows_at(tokens, starts, windows, block_size);
}

TokenBatch sample_packed_batch(std::span<const uint32_t> tokens, const std::vector<int64_t>& starts,
                               int64_t block_size, int64_t batch_size, Generator& gen) {
  std::vector<int64_t> windows = sample_window_starts(int64_t(tokens.size()), block_size, batch_size, gen);
  return packed_windows_at(tokens, starts, windows, block_size);
}

}  // namespace tg::data
