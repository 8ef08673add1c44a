// SettingTable: binds each daemon setting to its command-line flag and to its
// key in the TOML config file, so that a setting is declared exactly once.
//
// A setting is a CLI11 option (the flag, its help and its checks: Range,
// IsMember, ExistingFile...) plus a dotted config key ("migration.
// drain_timeout_ms" is `drain_timeout_ms` in the file's [migration] table).
// The TOML type a key must have follows from the field's C++ type: strings
// are TOML strings, integers TOML integers, bools TOML booleans and
// std::vector<std::string> arrays of strings. A value from the file passes
// through the option's own checks, so the flag and the key accept exactly
// the same values; a flag given on the command line wins over the file.
//
// Usage: Add() every setting, parse the command line with app(), then
// ApplyConfig() with the parsed file. Not thread-safe; lives only while the
// daemon starts.
#ifndef VFIOMIG_DAEMON_CONFIG_SETTING_TABLE_H_
#define VFIOMIG_DAEMON_CONFIG_SETTING_TABLE_H_

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "toml++/toml.h"

namespace vfiomig {

// The TOML type a config key takes.
enum class TomlKind { kString, kInteger, kBoolean, kStringArray };

class SettingTable {
 public:
  // `app` must outlive the table.
  explicit SettingTable(CLI::App& app) : app_(app) {}

  SettingTable(const SettingTable&) = delete;
  SettingTable& operator=(const SettingTable&) = delete;

  // Declares a setting stored in `field` (which must outlive the table):
  // the flag `flag` ("--drain-timeout-ms") and the config key `key`
  // ("migration.drain_timeout_ms"; empty for a command-line-only flag). The
  // help text gets the key appended. Returns the option, for checks.
  template <typename T>
  CLI::Option* Add(const std::string& flag, const std::string& key, T& field,
                   const std::string& help);

  // Applies the keys of `config` (parsed from `file`, which only names it
  // in messages) to the settings whose flags were not given on the command
  // line. Tables named in `extra_tables` (like "drivers") are left to the
  // caller. InvalidArgument "FILE:LINE:COLUMN: KEY: reason" for an unknown
  // key, a value of the wrong TOML type, or one the option's checks refuse.
  absl::Status ApplyConfig(const toml::table& config, const std::string& file,
                           const std::vector<std::string>& extra_tables);

  // Every declared config key with its TOML kind, in declaration order (for
  // documentation tests).
  std::vector<std::pair<std::string, TomlKind>> Keys() const;

 private:
  struct Entry {
    std::string key;
    TomlKind kind;
    CLI::Option* option;
    // Empties a list field (an empty TOML array adds no result to CLI11).
    std::function<void()> clear;
  };

  CLI::Option* Register(const std::string& key, TomlKind kind,
                        CLI::Option* option, std::function<void()> clear);

  CLI::App& app_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> by_key_;
};

template <typename T>
CLI::Option* SettingTable::Add(const std::string& flag, const std::string& key,
                               T& field, const std::string& help) {
  const std::string described =
      key.empty() ? help : help + " [config: " + key + "]";
  if constexpr (std::is_same_v<T, bool>) {
    return Register(key, TomlKind::kBoolean,
                    app_.add_flag(flag, field, described), nullptr);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return Register(key, TomlKind::kString,
                    app_.add_option(flag, field, described), nullptr);
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    return Register(key, TomlKind::kStringArray,
                    app_.add_option(flag, field, described),
                    [&field] { field.clear(); });
  } else {
    static_assert(std::is_integral_v<T>,
                  "a setting is a string, an integer, a bool or a list of "
                  "strings");
    return Register(key, TomlKind::kInteger,
                    app_.add_option(flag, field, described), nullptr);
  }
}

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CONFIG_SETTING_TABLE_H_
