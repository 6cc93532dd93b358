#pragma once
// Pre-tokenization: text split into pieces by a regex, as tiktoken and Hugging Face's Split
// pre-tokenizer (behavior "Isolated") do; BPE then runs inside each piece. Unicode classes
// (\p{L}, \p{N}, \s) come from PCRE2 (UTF + UCP), compiled once with its JIT.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tg::models {

/// GPT-2's pattern as tiktoken writes it (r50k/p50k/gpt2: contractions, letters, digits, the
/// whitespace rules); the default of a .tiktoken file.
extern const char* const kGpt2Pattern;
/// GPT-2's pattern as Hugging Face's ByteLevel pre-tokenizer writes it (use_regex: true); it
/// splits every text as kGpt2Pattern does.
extern const char* const kHfByteLevelPattern;
/// cl100k_base's pattern (GPT-3.5/4).
extern const char* const kCl100kPattern;
/// o200k_base's pattern (GPT-4o).
extern const char* const kO200kPattern;

/// The pattern named "gpt2", "cl100k" or "o200k"; any other name is returned as a regex.
std::string pattern_named(const std::string& name_or_regex);

/// The offset of the first interval quantifier followed by '+' in `pattern` (`\p{N}{1,3}+`), or
/// npos. PCRE2 (and tiktoken's fancy-regex) read `X{n,m}+` as possessive; Oniguruma, which
/// Hugging Face tokenizers uses, reads it as `(?:X{n,m})+`.
size_t find_interval_plus(std::string_view pattern);
/// `pattern` with the '+' after each interval quantifier dropped: `X{n,m}+` becomes `X{n,m}`,
/// which PCRE2 and Oniguruma read alike. It matches as `X{n,m}+` does where nothing after it in
/// its alternative can fail and backtrack into it (so in cl100k's pattern: `\p{N}{1,3}+|`).
std::string without_interval_plus(std::string pattern);

/// A compiled pre-tokenization regex. Thread-safe: split() may run on several threads at once.
class Pretokenizer {
 public:
  /// Compiles `pattern` (PCRE2 syntax with UTF and UCP; `$` matches at the end only). A pattern
  /// PCRE2 rejects is a tg::Error naming `source` and the offset of the fault.
  explicit Pretokenizer(std::string pattern, const std::string& source = "pre-tokenizer pattern");
  ~Pretokenizer();
  Pretokenizer(Pretokenizer&&) noexcept;
  Pretokenizer& operator=(Pretokenizer&&) noexcept;

  const std::string& pattern() const { return pattern_; }

  /// Appends the pieces of `text` to `pieces`, in order and covering every byte: each match,
  /// and each stretch between matches (bytes no match covers, such as invalid UTF-8, which
  /// never matches). Views point into `text`. Empty matches are skipped.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

 private:
  std::string pattern_;
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace tg::models
