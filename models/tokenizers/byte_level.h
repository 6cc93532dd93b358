#pragma once
// GPT-2's bytes-to-unicode map: every byte 0..255 is shown as one printable code point, so a
// byte-level BPE vocabulary can be stored as text (vocab.json, merges.txt, tokenizer.json).
// The printable bytes '!'..'~', '¡'..'¬', '®'..'ÿ' map to themselves; the other 68 bytes map,
// in increasing order, to U+0100, U+0101, ... (space 0x20 becomes 'Ġ' U+0120).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tg::models {

/// The code point that shows `byte` in a byte-level vocabulary.
char32_t byte_to_unicode(uint8_t byte);
/// The UTF-8 text that shows the bytes `bytes` ("Ġhello" for " hello").
std::string bytes_to_unicode(std::string_view bytes);
/// The inverse: a byte-level token's text back to its bytes, or nullopt when `text` is not
/// valid UTF-8 or holds a code point outside the map.
std::optional<std::string> unicode_to_bytes(std::string_view text);

}  // namespace tg::models
