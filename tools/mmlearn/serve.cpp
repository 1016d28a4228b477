#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/serve/server.h"

namespace mmlearn::cli {

void add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve",
                                 "an HTTP API (embeddings, search, zero-shot, transcription; OpenAPI at "
                                 "/openapi.json) and a search page");
  struct Args {
    std::vector<std::string> models, indexes;
    serve::ServeOptions options;
    double max_body_mb = 32;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->models,
                  "a model to serve, as PATH or NAME=PATH (requests name it; default name: the folder's); "
                  "repeat for more")
      ->required();
  cmd->add_option("--index", a->indexes, "a search index to serve (repeat for more)");
  cmd->add_option("--host", a->options.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", a->options.port, "port (0: any free one, printed when listening)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--threads", a->options.threads, "requests handled at once")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--max-batch", a->options.max_batch, "inputs a model embeds together at most")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  cmd->add_option("--max-body-mb", a->max_body_mb, "largest request body, MiB")
      ->check(CLI::Range(0.001, 4096.0))
      ->capture_default_str();
  cmd->add_option("--max-image-pixels", a->options.limits.max_image_pixels, "largest image, width x height")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000}))
      ->capture_default_str();
  cmd->add_option("--max-audio-seconds", a->options.limits.max_audio_seconds, "longest audio clip")
      ->check(CLI::Range(0.1, 4 * 3600.0))
      ->capture_default_str();
  cmd->add_option("--max-k", a->options.limits.max_k, "most results a search returns")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->capture_default_str();
  cmd->add_option("--max-inputs", a->options.limits.max_inputs,
                  "most inputs of an embeddings request, and labels of a classify request")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, R"(print {"url", "port"} on stdout once listening)");
  cmd->callback([a] {
    a->options.limits.max_body_bytes = static_cast<int64_t>(a->max_body_mb * (1 << 20));
    std::vector<serve::ServedModel> models;
    const std::regex named(R"(([A-Za-z0-9._-]+)=(.+))");
    for (const auto& spec : a->models) {
      std::smatch m;
      const bool has_name = std::regex_match(spec, m, named);
      const std::filesystem::path path = has_name ? m[2].str() : spec;
      std::string name =
          has_name ? m[1].str() : std::filesystem::absolute(path).lexically_normal().filename().string();
      if (name.empty())
        name = std::filesystem::absolute(path).lexically_normal().parent_path().filename().string();
      models.push_back({name, mmlearn::open_model(path)});
    }
    std::vector<std::filesystem::path> indexes(a->indexes.begin(), a->indexes.end());

    serve::Server server(std::move(models), indexes, a->options);
    const int port = server.bind();
    // SIGTERM and SIGINT (whichever thread the kernel hands them to) write a byte to a pipe; one thread
    // reads it and stops the server, which then finishes the requests under way.
    static int stop_pipe[2];
    check(::pipe(stop_pipe) == 0, "cannot create a pipe");
    struct sigaction action {};
    action.sa_handler = [](int signal) {
      const char byte = static_cast<char>(signal);
      [[maybe_unused]] auto ignored = ::write(stop_pipe[1], &byte, 1);
    };
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
    std::thread waiter([&] {
      char byte = 0;
      while (::read(stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
      }
      if (byte != 0) std::cerr << "stopping: finishing the requests under way\n";
      server.stop();
    });
    const std::string url = str_cat("http://", a->options.host, ":", port);
    if (a->json) std::cout << nlohmann::json{{"url", url}, {"port", port}}.dump() << std::endl;
    std::cerr << "serving on " << url << " (the page at /, the API at /openapi.json)\n";
    server.run();
    const char done = 0;  // wakes the waiter if no signal did
    [[maybe_unused]] auto ignored = ::write(stop_pipe[1], &done, 1);
    waiter.join();
    std::cerr << "stopped\n";
  });
}

}  // namespace mmlearn::cli
