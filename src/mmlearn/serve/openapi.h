// The OpenAPI 3.0 description of the HTTP API (GET /openapi.json): what each route takes and answers.
#pragma once

#include <nlohmann/json.hpp>

namespace mmlearn::serve {

const nlohmann::json& openapi_document();

}  // namespace mmlearn::serve
