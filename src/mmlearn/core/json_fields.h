// Reading optional fields of a JSON config with errors that name the file and the field.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "mmlearn/core/error.h"

namespace mmlearn {

// Reads json[key] into out when present, naming the field on a type error.
template <typename T>
void read_field(const nlohmann::json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(str_cat(where, ": field \"", key, "\" has the wrong type (", j.at(key).dump(), ")"));
  }
}

// An error naming `where` and the field when `value` is outside [lo, hi].
inline void check_field_range(const std::string& where, const char* field, int64_t value, int64_t lo,
                              int64_t hi) {
  check(value >= lo && value <= hi, where, ": ", field, " ", value, " is out of range (", lo, " to ", hi,
        ")");
}

// An error naming the first key of object `j` not in `known`: "WHERE: unknown WHAT field "key"".
inline void check_known_fields(const nlohmann::json& j, const std::set<std::string>& known,
                               const std::string& where, const std::string& what) {
  for (auto it = j.begin(); it != j.end(); ++it)
    check(known.count(it.key()) > 0, where, ": unknown ", what, "field \"", it.key(), "\"");
}

// json[key] when it is a string, else "" (absent, or another type: what a family's probe of an unknown
// config must not throw on).
inline std::string string_value(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace mmlearn
