#include "daemon/config/setting_table.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vfiomig {
namespace {

const char* KindName(TomlKind kind) {
  switch (kind) {
    case TomlKind::kString:
      return "a string";
    case TomlKind::kInteger:
      return "an integer";
    case TomlKind::kBoolean:
      return "a boolean (true or false)";
    case TomlKind::kStringArray:
      return "an array of strings";
  }
  return "?";
}

const char* NodeTypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date or time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// "FILE:LINE:COLUMN: KEY: what", the shape of every refusal.
absl::Status Refuse(const std::string& file, const toml::source_region& where,
                    const std::string& key, const std::string& what) {
  const toml::source_position& at = where.begin;
  return absl::InvalidArgumentError(
      absl::StrCat(file, ":", at.line, ":", at.column, ": ", key, ": ", what));
}

// The option's inputs for `node`, or nullopt when the node has the wrong
// TOML type.
std::optional<std::vector<std::string>> Inputs(const toml::node& node,
                                               TomlKind kind) {
  switch (kind) {
    case TomlKind::kString:
      if (const auto* s = node.as_string()) return {{s->get()}};
      return std::nullopt;
    case TomlKind::kInteger:
      if (const auto* i = node.as_integer()) {
        return {{std::to_string(i->get())}};
      }
      return std::nullopt;
    case TomlKind::kBoolean:
      if (const auto* b = node.as_boolean()) {
        return {{b->get() ? "true" : "false"}};
      }
      return std::nullopt;
    case TomlKind::kStringArray: {
      const auto* array = node.as_array();
      if (array == nullptr) return std::nullopt;
      std::vector<std::string> inputs;
      for (const toml::node& element : *array) {
        const auto* s = element.as_string();
        if (s == nullptr) return std::nullopt;
        inputs.push_back(s->get());
      }
      return inputs;
    }
  }
  return std::nullopt;
}

// CLI11 names the flag in front of its messages ("--x: Value 0 not in
// range..."); the config message names the key instead.
std::string WithoutFlag(std::string message, const CLI::Option& option) {
  const std::string prefix = option.get_name() + ": ";
  if (absl::StartsWith(message, prefix)) message.erase(0, prefix.size());
  return message;
}

}  // namespace

CLI::Option* SettingTable::Register(const std::string& key, TomlKind kind,
                                    CLI::Option* option,
                                    std::function<void()> clear) {
  if (!key.empty()) {
    by_key_.emplace(key, entries_.size());
    entries_.push_back(Entry{key, kind, option, std::move(clear)});
  }
  return option;
}

std::vector<std::pair<std::string, TomlKind>> SettingTable::Keys() const {
  std::vector<std::pair<std::string, TomlKind>> keys;
  for (const Entry& entry : entries_) keys.emplace_back(entry.key, entry.kind);
  return keys;
}

absl::Status SettingTable::ApplyConfig(
    const toml::table& config, const std::string& file,
    const std::vector<std::string>& extra_tables) {
  // Walks the file's tables; every value must be a declared key.
  struct Pending {
    const toml::table* table;
    std::string prefix;
  };
  std::vector<Pending> pending = {{&config, ""}};
  while (!pending.empty()) {
    const Pending at = pending.back();
    pending.pop_back();
    for (const auto& [name, node] : *at.table) {
      const std::string key = absl::StrCat(at.prefix, std::string(name.str()));
      if (at.prefix.empty() &&
          std::find(extra_tables.begin(), extra_tables.end(), key) !=
              extra_tables.end()) {
        continue;
      }
      auto it = by_key_.find(key);
      if (it == by_key_.end()) {
        const toml::table* sub = node.as_table();
        const std::string sub_prefix = key + ".";
        const bool known_table =
            std::any_of(entries_.begin(), entries_.end(),
                        [&sub_prefix](const Entry& entry) {
                          return absl::StartsWith(entry.key, sub_prefix);
                        });
        if (sub != nullptr && known_table) {
          pending.push_back({sub, sub_prefix});
          continue;
        }
        if (known_table) {
          return Refuse(file, node.source(), key,
                        absl::StrCat("must be a table ([", key, "]), not ",
                                     NodeTypeName(node)));
        }
        // Names what is known at this level: keys, or tables at the top.
        std::vector<std::string> known;
        for (const Entry& entry : entries_) {
          if (!absl::StartsWith(entry.key, at.prefix)) continue;
          const size_t dot = entry.key.find('.', at.prefix.size());
          std::string here = entry.key.substr(
              at.prefix.size(),
              dot == std::string::npos ? dot : dot - at.prefix.size());
          if (dot != std::string::npos) here = absl::StrCat("[", here, "]");
          if (std::find(known.begin(), known.end(), here) == known.end()) {
            known.push_back(std::move(here));
          }
        }
        if (at.prefix.empty()) {
          for (const std::string& extra : extra_tables) {
            known.push_back(absl::StrCat("[", extra, "]"));
          }
        }
        return Refuse(
            file, name.source(), key,
            absl::StrCat(sub != nullptr ? "unknown table" : "unknown key",
                         " (known here: ", absl::StrJoin(known, ", "), ")"));
      }
      const Entry& entry = entries_[it->second];
      std::optional<std::vector<std::string>> inputs = Inputs(node, entry.kind);
      if (!inputs) {
        return Refuse(file, node.source(), key,
                      absl::StrCat("must be ", KindName(entry.kind), ", not ",
                                   NodeTypeName(node)));
      }
      // The command line wins.
      if (entry.option->count() > 0) continue;
      if (inputs->empty()) {
        entry.clear();
        continue;
      }
      try {
        entry.option->add_result(*inputs);
        entry.option->run_callback();
      } catch (const CLI::Error& e) {
        return Refuse(file, node.source(), key,
                      WithoutFlag(e.what(), *entry.option));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace vfiomig
