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

}  // namespace mmlearn
