#include "models/tokenizers/chunked_encode.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "autograd/error.h"

namespace tg::models {
namespace {

bool cuttable(const BpeTokenizer& t) {
  if (t.add_prefix_space()) return false;
  for (const std::string& p : t.patterns())
    if (p != kGpt2Pattern && p != kHfByteLevelPattern && p != kCl100kPattern && p != kO200kPattern &&
        p != without_interval_plus(kCl100kPattern))  // cl100k as tokenizer.json writes it
      return false;
  return !t.patterns().empty();
}

bool ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

std::vector<int32_t> encode_in_chunks(const BpeTokenizer& tokenizer, std::string_view text, bool ordinary, int threads,
                                      const std::function<void(size_t, size_t)>& progress, size_t chunk_bytes) {
  TG_CHECK(threads >= 1, "encode: threads must be >= 1, got {}", threads);
  TG_CHECK(chunk_bytes >= 1, "encode: chunk_bytes must be >= 1");
  // Chunk ends: after at least chunk_bytes bytes, at the next "\n<letter>" not inside an added token.
  std::vector<size_t> ends;
  if (cuttable(tokenizer)) {
    size_t at = 0;
    while (text.size() - at > chunk_bytes) {
      size_t cut = at + chunk_bytes;
      for (;;) {
        cut = text.find('\n', cut);
        if (cut == std::string_view::npos || cut + 1 >= text.size()) break;
        bool inside_added = false;
        if (!ordinary)
          for (const AddedToken& a : tokenizer.added_tokens()) {
            // An occurrence of `a` covering the cut at cut + 1 would start within len(a) before it.
            const size_t from = cut + 1 >= a.content.size() ? cut + 1 - a.content.size() + 1 : 0;
            const size_t hit = text.substr(0, cut + a.content.size()).find(a.content, from);
            inside_added |= hit != std::string_view::npos && hit <= cut;
          }
        // A printable non-space before the '\n': the whitespace there is the '\n' alone, one piece
        // whether or not it ends the text (`\s++$` would otherwise take a longer run at a chunk's end).
        if (cut > 0 && text[cut - 1] > ' ' && text[cut - 1] < 0x7F && ascii_letter(text[cut + 1]) && !inside_added) break;
        ++cut;
      }
      if (cut == std::string_view::npos || cut + 1 >= text.size()) break;
      ends.push_back(cut + 1);
      at = cut + 1;
    }
  }
  ends.push_back(text.size());
  auto encode = [&](std::string_view chunk) { return ordinary ? tokenizer.encode_ordinary(chunk) : tokenizer.encode(chunk); };
  std::vector<std::vector<int32_t>> parts(ends.size());
  std::atomic<size_t> next{0};
  std::mutex report;
  size_t done = 0;
  std::exception_ptr error;
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < ends.size();) {
      const size_t begin = i == 0 ? 0 : ends[i - 1];
      try {
        parts[i] = encode(text.substr(begin, ends[i] - begin));
      } catch (...) {
        std::lock_guard lock(report);
        if (!error) error = std::current_exception();
        next = ends.size();
        return;
      }
      std::lock_guard lock(report);
      done += ends[i] - begin;
      if (progress) progress(done, text.size());
    }
  };
  std::vector<std::thread> pool;
  for (int k = 1; k < std::min<int>(threads, int(ends.size())); ++k) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  size_t total = 0;
  for (const auto& p : parts) total += p.size();
  std::vector<int32_t> ids;
  ids.reserve(total);
  for (const auto& p : parts) ids.insert(ids.end(), p.begin(), p.end());
  return ids;
}

}  // namespace tg::models
