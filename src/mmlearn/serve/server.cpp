#include "mmlearn/serve/server.h"

#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/base64.h"
#include "mmlearn/core/error.h"
#include "mmlearn/data/image_io.h"
#include "mmlearn/models/whisper_transcribe.h"
#include "mmlearn/search/indexing.h"
#include "mmlearn/serve/metrics.h"
#include "mmlearn/serve/model_worker.h"
#include "mmlearn/serve/openapi.h"
#include "mmlearn/serve/page.h"

namespace mmlearn::serve {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// What a request did wrong, and the status that says so.
struct HttpError : Error {
  int status;
  HttpError(int code, const std::string& message) : Error(message), status(code) {}
};

[[noreturn]] void bad_request(const std::string& message) { throw HttpError(400, message); }

json error_body(int status, const std::string& message) {
  return {{"error",
           {{"message", message},
            {"type", status < 500 ? "invalid_request_error" : "server_error"},
            {"code", status}}}};
}

void reply(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// The request's JSON object, its fields checked against `allowed`.
json parse_body(const httplib::Request& req, const std::vector<std::string>& allowed) {
  const std::string type = req.get_header_value("Content-Type");
  if (type.rfind("application/json", 0) != 0)
    throw HttpError(415, str_cat("expected Content-Type: application/json (got \"", type, "\")"));
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::parse_error& e) {
    bad_request(str_cat("the body is not valid JSON: ", e.what()));
  }
  if (!body.is_object()) bad_request("the body must be a JSON object");
  for (const auto& [key, value] : body.items())
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      bad_request(str_cat("unknown field \"", key, "\" (fields: ", join(allowed), ")"));
  return body;
}

std::optional<std::string> optional_string(const json& body, const char* field) {
  if (!body.contains(field) || body[field].is_null()) return std::nullopt;
  if (!body[field].is_string()) bad_request(str_cat("field \"", field, "\" must be a string"));
  if (body[field].get_ref<const std::string&>().empty())
    bad_request(str_cat("field \"", field, "\" is empty"));
  return body[field].get<std::string>();
}

// A request's images and audio, checked and written to files for Model::embed; removed with the request.
class MediaFiles {
 public:
  MediaFiles(const fs::path& dir, const ServeLimits& limits) : dir_(dir), limits_(limits) {}
  ~MediaFiles() {
    std::error_code ignored;
    for (const auto& path : paths_) fs::remove(path, ignored);
  }
  // `value`: base64, or a data: URL ("data:image/png;base64,...") as browsers read files.
  std::string image(const std::string& value, const std::string& what) {
    const std::string bytes = decode(value, what);
    data::decode_image(bytes, what, {.max_pixels = limits_.max_image_pixels});  // refuses huge or broken ones
    return write(bytes);
  }
  std::string audio(const std::string& value, const std::string& what) {
    const std::string path = write(decode(value, what));
    audio::load_audio(path, {.max_seconds = limits_.max_audio_seconds, .name = what});
    return path;
  }

 private:
  std::string decode(const std::string& value, const std::string& what) const {
    std::string_view text = value;
    if (text.rfind("data:", 0) == 0) {
      const auto comma = text.find(',');
      if (comma == std::string_view::npos || text.substr(0, comma).find(";base64") == std::string_view::npos)
        bad_request(str_cat(what, ": a data: URL must be base64 (data:TYPE;base64,...)"));
      text.remove_prefix(comma + 1);
    }
    try {
      return decode_base64(text, limits_.max_body_bytes, what);
    } catch (const Error& e) {
      bad_request(e.what());
    }
  }
  std::string write(const std::string& bytes) {
    static std::atomic<int64_t> counter{0};
    const fs::path path = dir_ / str_cat(counter++, ".bin");
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    check(out.good(), "cannot write ", path.string());
    paths_.push_back(path);
    return path.string();
  }
  fs::path dir_;
  const ServeLimits& limits_;
  std::vector<fs::path> paths_;
};

std::string content_type_of(const fs::path& path) {
  static const std::map<std::string, std::string> types = {
      {".png", "image/png"},   {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"}, {".wav", "audio/wav"},
      {".flac", "audio/flac"}, {".mp3", "audio/mpeg"}, {".ogg", "audio/ogg"},   {".m4a", "audio/mp4"}};
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  const auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// Resident set size from /proc (Linux); 0 where unavailable.
int64_t resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * ::sysconf(_SC_PAGESIZE);
}

struct Capabilities {
  std::vector<std::string> embeds;
  bool transcribes = false;
};

}  // namespace

struct Server::State {
  ServeOptions options;
  Metrics metrics;
  std::vector<std::unique_ptr<ModelWorker>> workers;
  std::vector<Capabilities> capabilities;  // by worker
  // A vector index, answered by a model's embeddings, or a spoken-word index, answered by its words.
  struct Index {
    std::string name;
    std::optional<search::EmbeddingIndex> vectors;
    std::optional<search::TranscriptIndex> transcripts;
    size_t worker = 0;  // the model that embeds a vector index's queries
    std::mutex mutex;   // SQLite statements are not shared between threads
    json info() const {
      json i = vectors ? search::to_json(vectors->info()) : transcripts->info();
      i["name"] = name;
      return i;
    }
    std::string modality() const { return vectors ? vectors->info().modality : "audio"; }
  };

  std::vector<std::unique_ptr<Index>> indexes;
  fs::path media_dir;
  httplib::Server http;

  size_t worker_named(const std::optional<std::string>& name, const std::function<bool(size_t)>& can,
                      const std::string& what) const {
    std::vector<std::string> names;
    for (size_t i = 0; i < workers.size(); ++i) {
      if (name ? workers[i]->name() == *name : can(i)) {
        if (!can(i))
          bad_request(
              str_cat("model \"", *name, "\" (", workers[i]->model().family().model_type, ") cannot ", what));
        return i;
      }
      names.push_back(workers[i]->name());
    }
    if (name) throw HttpError(404, str_cat("no model \"", *name, "\" (models: ", join(names), ")"));
    throw HttpError(400, str_cat("no model served here can ", what));
  }
  bool embeds(size_t worker, const std::string& modality) const {
    const auto& e = capabilities[worker].embeds;
    return std::find(e.begin(), e.end(), modality) != e.end();
  }
  Index& index_named(const std::optional<std::string>& name) {
    if (indexes.empty()) throw HttpError(404, "no index is served (start the server with --index)");
    if (!name) return *indexes.front();
    std::vector<std::string> names;
    for (auto& idx : indexes) {
      if (idx->name == *name) return *idx;
      names.push_back(idx->name);
    }
    throw HttpError(404, str_cat("no index \"", *name, "\" (indexes: ", join(names), ")"));
  }

  json embeddings(const json& body);
  json search(const json& body);
  std::vector<search::SearchHit> search_vectors(Index& idx, const std::optional<std::string>& text,
                                                const std::optional<std::string>& image,
                                                const std::optional<std::string>& audio, bool composed,
                                                int64_t k);
  json classify(const json& body);
  json transcribe(const json& body);
  json models() const;
  void media(const httplib::Request& req, httplib::Response& res);
  void routes();
};

Server::Server(std::vector<ServedModel> models, const std::vector<fs::path>& indexes, ServeOptions options)
    : s_(std::make_unique<State>()) {
  s_->options = std::move(options);
  check(!models.empty(), "serve needs at least one model");
  for (auto& m : models) {
    for (const auto& w : s_->workers)
      check(w->name() != m.name, "two models are called \"", m.name, "\": name them apart (NAME=PATH)");
    auto& metrics = s_->metrics;
    s_->workers.push_back(std::make_unique<ModelWorker>(
        m.name, std::move(m.model),
        WorkerOptions{
            .max_batch = s_->options.max_batch,
            .on_batch = [&metrics](const std::string& name, int64_t n) { metrics.batch(name, n); }}));
    s_->capabilities.push_back(
        s_->workers.back()
            ->run([](Model& model) {
              return Capabilities{model.embeds(), model.bundle<WhisperBundle>() != nullptr};
            })
            .get());
  }
  for (const auto& dir : indexes) {
    auto index = std::make_unique<State::Index>();
    index->name = fs::absolute(dir).lexically_normal().filename().string();
    if (index->name.empty())
      index->name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
    if (search::TranscriptIndex::exists(dir)) {
      index->transcripts = search::TranscriptIndex::open(dir);
    } else {
      index->vectors = search::EmbeddingIndex::open(dir);
      bool found = false;
      for (size_t i = 0; i < s_->workers.size() && !found; ++i) {
        if (!s_->embeds(i, "text")) continue;
        const auto probe = s_->workers[i]->run([](Model& m) { return search::probe_embedding(m); }).get();
        try {
          index->vectors->check_probe(probe, s_->workers[i]->name());
          index->worker = i;
          found = true;
        } catch (const Error&) {
        }
      }
      const auto info = index->vectors->info();
      check(found, "index ", dir.string(), " was built with ", info.model, " (", info.model_type,
            "), which no --model here embeds like: add --model ", info.model);
    }
    for (const auto& other : s_->indexes)
      check(other->name != index->name, "two indexes are called \"", index->name, "\"");
    s_->indexes.push_back(std::move(index));
  }
  s_->media_dir = fs::temp_directory_path() / str_cat("mmlearn-serve-", ::getpid());
  fs::create_directories(s_->media_dir);
  s_->routes();
}

Server::~Server() {
  std::error_code ignored;
  fs::remove_all(s_->media_dir, ignored);
}

int Server::bind() {
  const auto& o = s_->options;
  const int port =
      o.port == 0 ? s_->http.bind_to_any_port(o.host) : (s_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  check(port > 0, "cannot listen on ", o.host, ":", o.port, " (in use, or not an address of this machine)");
  return port;
}

void Server::run() { s_->http.listen_after_bind(); }
void Server::stop() { s_->http.stop(); }

void Server::State::routes() {
  const int threads = options.threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(static_cast<size_t>(options.limits.max_body_bytes));
  http.set_keep_alive_max_count(10000);
  // Headers and body go out in separate writes: with Nagle's algorithm each answer waited for the client's
  // delayed ACK (about 40 ms).
  http.set_tcp_nodelay(true);
  http.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 413   ? str_cat("the body is larger than the limit of ",
                                                              options.limits.max_body_bytes, " bytes")
                                : res.status == 404 ? "no such route (GET /openapi.json lists them)"
                                                    : str_cat("HTTP ", res.status);
    reply(res, error_body(res.status, message), res.status);
  });

  // Every handler answers: what a request did wrong is a 4xx, anything else a 500; neither stops the server.
  // An mmlearn::Error is what the library found wrong with the input (an image that does not decode): 400.
  auto route = [this](const std::string& name,
                      std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    return [this, name, fn](const httplib::Request& req, httplib::Response& res) {
      const auto start = std::chrono::steady_clock::now();
      try {
        fn(req, res);
      } catch (const HttpError& e) {
        reply(res, error_body(e.status, e.what()), e.status);
      } catch (const Error& e) {
        reply(res, error_body(400, e.what()), 400);
      } catch (const std::exception& e) {
        reply(res, error_body(500, e.what()), 500);
      }
      metrics.request(name, res.status,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    };
  };
  auto post = [&](const std::string& path, json (State::*handler)(const json&),
                  std::vector<std::string> fields) {
    http.Post(path, route(path, [this, handler, fields](const httplib::Request& req, httplib::Response& res) {
                reply(res, (this->*handler)(parse_body(req, fields)));
              }));
  };
  post("/v1/embeddings", &State::embeddings, {"input", "model", "encoding_format"});
  post("/v1/search", &State::search, {"text", "image", "audio", "k", "index"});
  post("/v1/classify", &State::classify, {"text", "image", "audio", "labels", "model"});
  post("/v1/audio/transcriptions", &State::transcribe, {"audio", "model", "language"});
  auto get = [&](const std::string& path,
                 std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    http.Get(path, route(path, std::move(fn)));
  };
  get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { reply(res, models()); });
  get("/v1/media", [this](const httplib::Request& req, httplib::Response& res) { media(req, res); });
  get("/health", [this](const httplib::Request&, httplib::Response& res) {
    json names = json::array();
    for (const auto& w : workers) names.push_back(w->name());
    json index_names = json::array();
    for (const auto& idx : indexes) index_names.push_back(idx->name);
    reply(res, {{"status", "ok"}, {"models", names}, {"indexes", index_names}});
  });
  get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::vector<std::pair<std::string, double>> gauges;
    for (const auto& w : workers)
      gauges.emplace_back(str_cat("mmlearn_queue_depth{model=\"", w->name(), "\"}"), double(w->queued()));
    gauges.emplace_back("mmlearn_resident_memory_bytes", double(resident_memory_bytes()));
    res.set_content(metrics.prometheus(gauges), "text/plain; version=0.0.4");
  });
  get("/openapi.json",
      [](const httplib::Request&, httplib::Response& res) { reply(res, openapi_document()); });
  get("/",
      [](const httplib::Request&, httplib::Response& res) { res.set_content(search_page(), "text/html"); });
}

json Server::State::models() const {
  json data = json::array();
  for (size_t i = 0; i < workers.size(); ++i)
    data.push_back({{"id", workers[i]->name()},
                    {"object", "model"},
                    {"model_type", workers[i]->model().family().model_type},
                    {"embeds", capabilities[i].embeds},
                    {"transcribes", capabilities[i].transcribes}});
  json index_list = json::array();
  for (const auto& idx : indexes) {
    json info = idx->info();
    if (idx->vectors) info["served_by"] = workers[idx->worker]->name();
    index_list.push_back(info);
  }
  return {{"object", "list"}, {"data", data}, {"indexes", index_list}};
}

json Server::State::embeddings(const json& body) {
  if (!body.contains("input"))
    bad_request(
        "field \"input\" is missing (a text, or a list of texts and {\"image\"|\"audio\": base64} objects)");
  if (body.contains("encoding_format") && body["encoding_format"] != "float")
    bad_request("field \"encoding_format\" must be \"float\"");
  const json input = body["input"].is_array() ? body["input"] : json::array({body["input"]});
  if (input.empty()) bad_request("field \"input\" is empty");
  if (static_cast<int64_t>(input.size()) > options.limits.max_inputs)
    bad_request(str_cat("field \"input\" holds ", input.size(), " inputs, more than the limit of ",
                        options.limits.max_inputs));
  MediaFiles files(media_dir, options.limits);
  std::map<std::string, std::vector<std::pair<size_t, std::string>>> by_modality;
  for (size_t i = 0; i < input.size(); ++i) {
    const json& item = input[i];
    const std::string where = str_cat("input[", i, "]");
    if (item.is_string()) {
      if (item.get_ref<const std::string&>().empty()) bad_request(where + " is an empty text");
      by_modality["text"].emplace_back(i, item.get<std::string>());
      continue;
    }
    if (!item.is_object() || item.size() != 1)
      bad_request(where + " must be a text or an object with one of \"text\", \"image\", \"audio\"");
    const std::string modality = item.begin().key();
    const json& value = item.begin().value();
    if (!value.is_string() || value.get_ref<const std::string&>().empty())
      bad_request(str_cat(where, ".", modality, " must be a non-empty string"));
    const std::string v = value.get<std::string>();
    if (modality == "text")
      by_modality["text"].emplace_back(i, v);
    else if (modality == "image")
      by_modality["image"].emplace_back(i, files.image(v, where + ".image"));
    else if (modality == "audio")
      by_modality["audio"].emplace_back(i, files.audio(v, where + ".audio"));
    else
      bad_request(str_cat(where, ": unknown field \"", modality, "\" (fields: text, image, audio)"));
  }
  const size_t w = worker_named(
      optional_string(body, "model"),
      [&](size_t i) {
        for (const auto& [modality, items] : by_modality)
          if (!embeds(i, modality)) return false;
        return true;
      },
      "embed " + join([&] {
        std::vector<std::string> m;
        for (const auto& [modality, items] : by_modality) m.push_back(modality);
        return m;
      }()));
  std::vector<std::pair<const std::vector<std::pair<size_t, std::string>>*, std::future<torch::Tensor>>>
      pending;
  for (const auto& [modality, items] : by_modality) {
    std::vector<std::string> inputs;
    for (const auto& item : items) inputs.push_back(item.second);
    pending.emplace_back(&items, workers[w]->embed(modality, std::move(inputs)));
  }
  json data = json::array();
  for (size_t i = 0; i < input.size(); ++i) data.push_back(nullptr);
  for (auto& [items, future] : pending) {
    const torch::Tensor e = future.get().contiguous();
    for (size_t r = 0; r < items->size(); ++r) {
      const float* row = e[static_cast<int64_t>(r)].data_ptr<float>();
      data[(*items)[r].first] = {{"object", "embedding"},
                                 {"index", (*items)[r].first},
                                 {"embedding", std::vector<float>(row, row + e.size(1))}};
    }
  }
  return {{"object", "list"}, {"model", workers[w]->name()}, {"data", data}};
}

json Server::State::search(const json& body) {
  Index& idx = index_named(optional_string(body, "index"));
  int64_t k = 10;
  if (body.contains("k")) {
    if (!body["k"].is_number_integer()) bad_request("field \"k\" must be an integer");
    const auto& v = body["k"];
    if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(options.limits.max_k)
                               : v.get<int64_t>() < 1 || v.get<int64_t>() > options.limits.max_k)
      bad_request(str_cat("field \"k\" must be in [1, ", options.limits.max_k, "] (got ", v.dump(), ")"));
    k = v.get<int64_t>();
  }
  const auto text = optional_string(body, "text"), image = optional_string(body, "image"),
             audio = optional_string(body, "audio");
  const int given = int(text.has_value()) + int(image.has_value()) + int(audio.has_value());
  if (given == 0)
    bad_request("a search needs a query: \"text\", \"image\", \"audio\", or \"image\" with \"text\"");
  const bool composed = given == 2 && image && text;
  if (given > 1 && !composed)
    bad_request(
        "a search takes one of \"text\", \"image\", \"audio\", or \"image\" with \"text\" (a composed "
        "query)");
  std::vector<search::SearchHit> hits;
  if (idx.transcripts) {
    if (!text || given != 1)
      bad_request(str_cat("index \"", idx.name, "\" is searched by words: send \"text\""));
    std::lock_guard<std::mutex> lock(idx.mutex);
    hits = idx.transcripts->search(*text, k);
  } else {
    hits = search_vectors(idx, text, image, audio, composed, k);
  }
  json results = json::array();
  for (const auto& h : hits) {
    json r = search::to_json(h);
    if (idx.modality() != "text")
      r["media"] = str_cat("/v1/media?index=", url_encode(idx.name), "&key=", url_encode(h.key));
    results.push_back(std::move(r));
  }
  return {{"index", idx.name}, {"modality", idx.modality()}, {"results", results}};
}

std::vector<search::SearchHit> Server::State::search_vectors(Index& idx,
                                                             const std::optional<std::string>& text,
                                                             const std::optional<std::string>& image,
                                                             const std::optional<std::string>& audio,
                                                             bool composed, int64_t k) {
  MediaFiles files(media_dir, options.limits);
  ModelWorker& worker = *workers[idx.worker];
  torch::Tensor query;
  if (composed) {
    const std::string path = files.image(*image, "image");
    query = worker.run([&](Model& m) { return m.compose({path}, {*text}, Precision::fp32); }).get();
  } else {
    const std::string modality = text ? "text" : image ? "image" : "audio";
    if (!embeds(idx.worker, modality))
      bad_request(str_cat("index \"", idx.name, "\" is searched with ", worker.name(),
                          ", which does not embed ", modality));
    const std::string input = text    ? *text
                              : image ? files.image(*image, "image")
                                      : files.audio(*audio, "audio");
    query = worker.embed(modality, {input}).get();
  }
  query = query.contiguous();
  std::lock_guard<std::mutex> lock(idx.mutex);
  return idx.vectors->search(query.data_ptr<float>(), 1, k).front();
}

json Server::State::classify(const json& body) {
  if (!body.contains("labels") || !body["labels"].is_array() || body["labels"].empty())
    bad_request("field \"labels\" must be a non-empty list of texts");
  std::vector<std::string> labels;
  for (const auto& l : body["labels"]) {
    if (!l.is_string() || l.get_ref<const std::string&>().empty())
      bad_request("each label must be a non-empty text");
    labels.push_back(l.get<std::string>());
  }
  if (static_cast<int64_t>(labels.size()) > options.limits.max_inputs)
    bad_request(str_cat(labels.size(), " labels, more than the limit of ", options.limits.max_inputs));
  const auto text = optional_string(body, "text"), image = optional_string(body, "image"),
             audio = optional_string(body, "audio");
  if (int(text.has_value()) + int(image.has_value()) + int(audio.has_value()) != 1)
    bad_request("classify takes one of \"text\", \"image\" or \"audio\"");
  const std::string modality = text ? "text" : image ? "image" : "audio";
  MediaFiles files(media_dir, options.limits);
  const std::string input = text    ? *text
                            : image ? files.image(*image, "image")
                                    : files.audio(*audio, "audio");
  const size_t w = worker_named(
      optional_string(body, "model"), [&](size_t i) { return embeds(i, modality) && embeds(i, "text"); },
      str_cat("embed ", modality, " and text"));
  auto item = workers[w]->embed(modality, {input});
  auto label_embeds = workers[w]->embed("text", labels);
  // CLIP's zero-shot: a softmax over the labels of the scaled cosine similarities (scale 100, CLIP's cap).
  const torch::Tensor p = torch::softmax(100.0 * torch::matmul(item.get(), label_embeds.get().t()), -1)[0];
  std::vector<std::pair<double, std::string>> ranked;
  for (size_t i = 0; i < labels.size(); ++i) ranked.emplace_back(p[int64_t(i)].item<double>(), labels[i]);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  json out = json::array();
  for (const auto& [score, label] : ranked) out.push_back({{"label", label}, {"score", score}});
  return {{"model", workers[w]->name()}, {"labels", out}};
}

json Server::State::transcribe(const json& body) {
  const auto audio_field = optional_string(body, "audio");
  if (!audio_field) bad_request("field \"audio\" is missing (base64 of an audio file)");
  const auto language = optional_string(body, "language");
  const size_t w = worker_named(
      optional_string(body, "model"), [&](size_t i) { return capabilities[i].transcribes; },
      "transcribe speech");
  MediaFiles files(media_dir, options.limits);
  const std::string path = files.audio(*audio_field, "audio");
  return workers[w]
      ->run([&](Model& m) {
        TranscribeOptions o;
        if (language) o.decode.language = *language;
        json t = to_json(mmlearn::transcribe(*m.bundle<WhisperBundle>(), path, o));
        t["model"] = workers[w]->name();
        return t;
      })
      .get();
}

void Server::State::media(const httplib::Request& req, httplib::Response& res) {
  const std::string key = req.get_param_value("key");
  Index& idx =
      index_named(req.has_param("index") ? std::optional(req.get_param_value("index")) : std::nullopt);
  bool held;
  {
    std::lock_guard<std::mutex> lock(idx.mutex);
    held = idx.modality() != "text" &&
           (idx.vectors ? idx.vectors->contains(key) : idx.transcripts->contains(key));
  }
  // Only the files an index holds are served: the key is never a path the client chooses freely.
  if (!held) throw HttpError(404, str_cat("index \"", idx.name, "\" holds no file \"", key, "\""));
  std::ifstream in(key, std::ios::binary);
  if (!in) throw HttpError(404, str_cat("the indexed file ", key, " cannot be read"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  res.set_content(bytes, content_type_of(key).c_str());
}

}  // namespace mmlearn::serve
