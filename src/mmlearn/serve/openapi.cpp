#include "mmlearn/serve/openapi.h"

namespace mmlearn::serve {
using nlohmann::json;

namespace {

json string_schema(const char* description) { return {{"type", "string"}, {"description", description}}; }

json object_schema(json properties, json required = json::array()) {
  json schema{{"type", "object"}, {"additionalProperties", false}, {"properties", std::move(properties)}};
  if (!required.empty()) schema["required"] = std::move(required);
  return schema;
}

json post(const char* summary, json request, json response) {
  return {
      {"post",
       {{"summary", summary},
        {"requestBody",
         {{"required", true}, {"content", {{"application/json", {{"schema", std::move(request)}}}}}}},
        {"responses",
         {{"200",
           {{"description", "OK"}, {"content", {{"application/json", {{"schema", std::move(response)}}}}}}},
          {"4XX",
           {{"description", "a bad request, and what was wrong"},
            {"content",
             {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}}}}}}}};
}

json get(const char* summary, const char* type) {
  return {{"get",
           {{"summary", summary},
            {"responses", {{"200", {{"description", "OK"}, {"content", {{type, json::object()}}}}}}}}}};
}

}  // namespace

const json& openapi_document() {
  static const json doc = [] {
    const json base64 =
        string_schema("base64 of the file's bytes, or a data: URL (data:image/png;base64,...)");
    const json any = json::object();
    json paths;
    paths["/v1/embeddings"] = post(
        "Embeddings of texts, images and audio clips, shaped as OpenAI's embeddings API",
        object_schema(
            {{"input",
              {{"description", "a text, or a list of texts and {\"text\"|\"image\"|\"audio\": ...} objects"},
               {"oneOf", json::array({{{"type", "string"}}, {{"type", "array"}}})}}},
             {"model", string_schema("a served model's name (default: the first that embeds the inputs)")},
             {"encoding_format", {{"type", "string"}, {"enum", {"float"}}}}},
            {"input"}),
        {{"type", "object"},
         {"properties",
          {{"object", {{"type", "string"}}},
           {"model", {{"type", "string"}}},
           {"data", {{"type", "array"}}}}}});
    paths["/v1/search"] = post(
        "The nearest items of an index to a text, an image, an audio clip, or an image with a text that says "
        "what "
        "to change (a composed query)",
        object_schema({{"text", string_schema("query text; with image, the change to make")},
                       {"image", base64},
                       {"audio", base64},
                       {"k", {{"type", "integer"}, {"minimum", 1}, {"default", 10}}},
                       {"index", string_schema("a served index's name (default: the first)")}}),
        {{"type", "object"},
         {"properties",
          {{"results",
            {{"type", "array"},
             {"items",
              {{"type", "object"},
               {"properties",
                {{"id", {{"type", "integer"}}},
                 {"score", {{"type", "number"}}},
                 {"key", {{"type", "string"}}},
                 {"record", any},
                 {"media", string_schema("URL of the item's file")}}}}}}}}}});
    paths["/v1/classify"] =
        post("Zero-shot classification: the labels' probabilities for an image, audio clip or text",
             object_schema({{"labels", {{"type", "array"}, {"items", {{"type", "string"}}}, {"minItems", 1}}},
                            {"text", string_schema("a text to classify")},
                            {"image", base64},
                            {"audio", base64},
                            {"model", string_schema("a served model's name")}},
                           {"labels"}),
             {{"type", "object"},
              {"properties", {{"labels", {{"type", "array"}}}, {"model", {{"type", "string"}}}}}});
    paths["/v1/audio/transcriptions"] =
        post("Speech to text with a Whisper model: the text, its language and timed segments",
             object_schema({{"audio", base64},
                            {"language", string_schema("language code, e.g. en (default: detected)")},
                            {"model", string_schema("a served model's name")}},
                           {"audio"}),
             {{"type", "object"},
              {"properties",
               {{"text", {{"type", "string"}}},
                {"language", {{"type", "string"}}},
                {"segments", {{"type", "array"}}}}}});
    paths["/v1/models"] =
        get("The served models (what each embeds, whether it transcribes) and indexes", "application/json");
    paths["/v1/media"] =
        get("An indexed item's file: query parameters index and key", "application/octet-stream");
    paths["/health"] = get("Whether the server is up, with its models and indexes", "application/json");
    paths["/metrics"] = get(
        "Requests, latency, batch sizes, queue depths and memory in Prometheus' text format", "text/plain");
    paths["/openapi.json"] = get("This description", "application/json");
    paths["/"] = get("The search page", "text/html");
    return json{{"openapi", "3.0.3"},
                {"info",
                 {{"title", "mmlearn"},
                  {"version", "1"},
                  {"description",
                   "Embeddings, search, zero-shot classification and transcription with the models "
                   "mmlearn serves"}}},
                {"paths", paths},
                {"components",
                 {{"schemas",
                   {{"Error",
                     {{"type", "object"},
                      {"properties",
                       {{"error",
                         {{"type", "object"},
                          {"properties",
                           {{"message", {{"type", "string"}}},
                            {"type", {{"type", "string"}}},
                            {"code", {{"type", "integer"}}}}}}}}}}}}}}}};
  }();
  return doc;
}

}  // namespace mmlearn::serve
