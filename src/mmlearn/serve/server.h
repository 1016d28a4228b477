// The HTTP API (mmlearn serve): models behind one process, each owned by a batching worker
// (serve/model_worker.h), and search indexes answered with the model each was built with. Routes:
//   POST /v1/embeddings             texts, images, audio (base64) → embeddings, shaped as OpenAI's API
//   POST /v1/search                 text, image, audio, or image + text (composed) → an index's nearest items
//   POST /v1/classify               zero-shot: an image, audio clip or text against labels
//   POST /v1/audio/transcriptions   speech to text, with a model that transcribes
//   GET  /v1/models, /v1/media      what is served; an indexed item's file (for the page)
//   GET  /health, /metrics (Prometheus), /openapi.json, / (the search page)
// Every request is checked before it reaches a model (body size, JSON, fields and their types, image pixels,
// audio length, k): a bad one gets a 4xx JSON answer {"error": {"message", "type", "code"}}, and the server
// keeps serving.
//
//   mmlearn::serve::Server server(std::move(models), {"idx"}, {.port = 8080});
//   server.bind();
//   server.run();   // until server.stop(), from any thread (SIGTERM)
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mmlearn/models/registry.h"

namespace mmlearn::serve {

struct ServeLimits {
  int64_t max_body_bytes = int64_t{32} << 20;
  int64_t max_image_pixels = int64_t{4096} * 4096;
  double max_audio_seconds = 600;
  int64_t max_k = 1000;
  int64_t max_inputs = 256;  // inputs of one embeddings request, labels of one classify request
};

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (bind() says which)
  int threads = 8;  // requests handled at once
  int64_t max_batch = 64;
  ServeLimits limits;
};

struct ServedModel {
  std::string name;  // what requests call it ("model": ...)
  std::unique_ptr<Model> model;
};

class Server {
 public:
  // Each index is answered by the first model that embeds as the index's own model did; none is an Error
  // that says which model to add.
  Server(std::vector<ServedModel> models, const std::vector<std::filesystem::path>& indexes,
         ServeOptions options);
  ~Server();
  // Listens on options.host:port; returns the port. An Error when the address is taken.
  int bind();
  void run();   // serves until stop(); then finishes the requests under way
  void stop();  // from any thread

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace mmlearn::serve
