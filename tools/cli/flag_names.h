#pragma once
// Options and their flags. models/ names an option by its field, in backticks (`block_size`,
// `lr`); the command's flag is the field with dashes (--block-size, --lr). Only tools/ knows flags.
#include <CLI/CLI.hpp>

#include <cctype>
#include <string>
#include <string_view>

namespace tg::cli {

/// The flag of an option field: "n_kv_head" -> "--n-kv-head".
inline std::string flag_of(std::string_view field) {
  std::string flag = "--";
  for (char c : field) flag += c == '_' ? '-' : c;
  return flag;
}

/// `message` with every `field` that is an option of `command` written as its flag
/// ("`block_size` must be positive" -> "--block-size must be positive"); other text is unchanged.
inline std::string with_flag_names(const std::string& message, const CLI::App& command) {
  std::string out;
  size_t at = 0;
  for (size_t open = message.find('`'); open != std::string::npos; open = message.find('`', at)) {
    const size_t close = message.find('`', open + 1);
    if (close == std::string::npos) break;
    const std::string_view field = std::string_view(message).substr(open + 1, close - open - 1);
    const bool identifier = !field.empty() && std::islower(uint8_t(field[0])) &&
                            field.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string_view::npos;
    const std::string flag = identifier ? flag_of(field) : std::string();
    if (identifier && command.get_option_no_throw(flag) != nullptr) {
      out.append(message, at, open - at).append(flag);
      at = close + 1;
    } else {
      out.append(message, at, close - at);  // the opening backtick and the text up to the closing one
      at = close;                           // the closing backtick may open the next name
    }
  }
  return out.append(message, at, std::string::npos);
}

}  // namespace tg::cli
