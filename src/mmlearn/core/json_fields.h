// Reading optional fields of a JSON config with errors that name the file and the field.
#pragma once

#include <nlohmann/json.hpp>
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

// json[key] when it is a string, else "" (absent, or another type: what a family's probe of an unknown
// config must not throw on).
inline std::string string_value(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace mmlearn
