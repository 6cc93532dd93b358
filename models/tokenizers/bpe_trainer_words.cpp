#include "models/tokenizers/bpe_trainer_words.h"

#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include "autograd/error.h"

namespace tg::models {

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Eight ASCII bytes at a time: most training text is ASCII.
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, least;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, least = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, least = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, least = 0x10000;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

BpeWordCounter::BpeWordCounter(std::string pattern) : pretokenizer_(std::move(pattern), "BPE trainer pattern") {}

void BpeWordCounter::add(std::string_view text, const std::string& source, const std::function<void(size_t)>& progress) {
  // Parts of about kPart bytes, each ending just after a '\n' (or at the end of the text), so
  // that no line is cut.
  constexpr size_t kPart = size_t(256) << 10;
  std::vector<size_t> ends;
  for (size_t at = 0; at < text.size();) {
    size_t end = at + kPart >= text.size() ? text.size() : text.find('\n', at + kPart);
    end = end == std::string_view::npos ? text.size() : std::min(end + 1, text.size());
    ends.push_back(end);
    at = end;
  }
  std::atomic<size_t> first_invalid{std::string_view::npos};
  std::mutex report;
  size_t done = 0;
  tbb::enumerable_thread_specific<Counts> local;
  tbb::enumerable_thread_specific<uint64_t> local_total(0);
  tbb::parallel_for(tbb::blocked_range<size_t>(0, ends.size(), 1), [&](const tbb::blocked_range<size_t>& range) {
    Counts& counts = local.local();
    uint64_t& total = local_total.local();
    std::vector<std::string_view> pieces;
    for (size_t p = range.begin(); p < range.end(); ++p) {
      const size_t begin = p == 0 ? 0 : ends[p - 1];
      const std::string_view part = text.substr(begin, ends[p] - begin);
      if (const size_t bad = find_invalid_utf8(part); bad != std::string_view::npos) {
        size_t seen = first_invalid.load();
        while (begin + bad < seen && !first_invalid.compare_exchange_weak(seen, begin + bad)) {
        }
        continue;
      }
      for (size_t at = 0; at < part.size();) {
        size_t eol = part.find('\n', at);
        eol = eol == std::string_view::npos ? part.size() : eol + 1;
        pieces.clear();
        pretokenizer_.split(part.substr(at, eol - at), pieces);
        for (std::string_view piece : pieces) {
          auto it = counts.find(piece);
          if (it == counts.end()) counts.emplace(std::string(piece), 1);
          else ++it->second;
        }
        total += pieces.size();
        at = eol;
      }
      if (progress) {
        std::lock_guard lock(report);
        done += part.size();
        progress(done);
      }
    }
  });
  if (const size_t bad = first_invalid.load(); bad != std::string_view::npos) {
    const size_t line = 1 + size_t(std::count(text.begin(), text.begin() + bad, '\n'));
    const size_t line_start = text.rfind('\n', bad == 0 ? 0 : bad - 1);
    const size_t column = line_start == std::string_view::npos || bad == 0 ? bad : bad - line_start - 1;
    fail("{}: line {}, byte {} of the line (byte {} of the file): invalid UTF-8 (0x{:02X}); the trainer reads text as "
         "Hugging Face's does, as UTF-8: convert the file first (iconv -f LATIN1 -t UTF-8, say)",
         source, line, column + 1, bad, unsigned(static_cast<unsigned char>(text[bad])));
  }
  for (Counts& counts : local) {
    if (counts_.empty()) {
      counts_.swap(counts);
      continue;
    }
    for (auto& [word, n] : counts) {
      auto it = counts_.find(word);
      if (it == counts_.end()) counts_.emplace(word, n);
      else it->second += n;
    }
  }
  for (uint64_t n : local_total) total_ += n;
}

std::vector<WordCount> BpeWordCounter::words() const {
  std::vector<WordCount> out;
  out.reserve(counts_.size());
  for (const auto& [word, n] : counts_) out.push_back(WordCount{word, n});
  std::sort(out.begin(), out.end(), [](const WordCount& a, const WordCount& b) { return a.bytes < b.bytes; });
  return out;
}

}  // namespace tg::models
