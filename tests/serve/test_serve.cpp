// The HTTP API as clients meet it: answers equal the library's own, concurrent requests are batched without
// changing them, every bad request of the catalogue gets a 4xx JSON answer and the server keeps serving, and
// SIGTERM stops it cleanly.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "../test_util.h"
#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/base64.h"
#include "mmlearn/serve/server.h"

namespace mmlearn::serve {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// A clip-tiny trained for a few steps, an index of shapes images, and a server over both (a combiner too).
class Serve : public ::testing::Test {
 protected:
  static fs::path dir_;
  static std::unique_ptr<Server> server_;
  static std::thread thread_;
  static int port_;

  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / "mmlearn-tests" / ("serve-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    for (const auto& args : {str_cat("data shapes --out ", path("shapes"), " --train 64 --test 24 --seed 5"),
                             str_cat("train --preset clip-tiny --data ", path("shapes"), " --out ",
                                     path("clip"), " --steps 2 --batch-size 16"),
                             str_cat("index build --model ", path("clip"), " --data ",
                                     path("shapes/test.jsonl"), " --out ", path("idx"))}) {
      const auto r = test::run_cli(args);
      ASSERT_EQ(r.status, 0) << args << "\n" << r.output;
    }
    std::vector<ServedModel> models;
    models.push_back({"clip", open_model(path("clip"))});
    ServeOptions options{.port = 0, .threads = 8};
    options.limits.max_body_bytes = 1 << 20;
    server_ = std::make_unique<Server>(std::move(models), std::vector<fs::path>{path("idx")}, options);
    port_ = server_->bind();
    thread_ = std::thread([] { server_->run(); });
  }
  static void TearDownTestSuite() {
    if (!server_) return;
    server_->stop();
    thread_.join();
    server_.reset();
  }
  static std::string path(const std::string& p) { return (dir_ / p).string(); }

  static httplib::Result post(const std::string& route, const std::string& body,
                              const std::string& type = "application/json") {
    httplib::Client client("127.0.0.1", port_);
    return client.Post(route.c_str(), body, type.c_str());
  }
  static json post_json(const std::string& route, const json& body, int expected = 200) {
    auto r = post(route, body.dump());
    EXPECT_TRUE(r) << route;
    if (!r) return nullptr;
    EXPECT_EQ(r->status, expected) << route << " " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    return json::parse(r->body);
  }
  static httplib::Result get(const std::string& route) {
    return httplib::Client("127.0.0.1", port_).Get(route.c_str());
  }
  static std::string image_base64(int i) {
    return encode_base64(read_file(path(str_cat("shapes/images/test/00000", i, ".png"))));
  }
};
fs::path Serve::dir_;
std::unique_ptr<Server> Serve::server_;
std::thread Serve::thread_;
int Serve::port_ = 0;

std::vector<float> floats(const json& embedding) { return embedding.get<std::vector<float>>(); }

void expect_close(const std::vector<float>& a, const torch::Tensor& b) {
  ASSERT_EQ(static_cast<int64_t>(a.size()), b.numel());
  const auto c = b.contiguous();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], c.data_ptr<float>()[i], 1e-5) << i;
}

TEST_F(Serve, AnswersAsTheLibraryDoes) {
  auto model = open_model(path("clip"));
  const json texts = post_json("/v1/embeddings", {{"input", {"a red circle", "a small blue star"}}});
  ASSERT_EQ(texts["data"].size(), 2u);
  EXPECT_EQ(texts["model"], "clip");
  const auto expected = model->embed("text", {"a red circle", "a small blue star"}, Precision::fp32);
  for (int i = 0; i < 2; ++i) expect_close(floats(texts["data"][i]["embedding"]), expected[i]);

  const json images =
      post_json("/v1/embeddings", {{"input", {{{"image", image_base64(1)}}, "a red circle"}}});
  ASSERT_EQ(images["data"].size(), 2u);
  expect_close(floats(images["data"][0]["embedding"]),
               model->embed("image", {path("shapes/images/test/000001.png")}, Precision::fp32)[0]);

  const json hits = post_json("/v1/search", {{"text", "a red circle"}, {"k", 5}});
  ASSERT_EQ(hits["results"].size(), 5u);
  for (size_t i = 1; i < 5; ++i) EXPECT_GE(hits["results"][i - 1]["score"], hits["results"][i]["score"]);
  // The page shows a hit's image from the media route: the indexed file's bytes.
  const auto media = get(hits["results"][0]["media"].get<std::string>());
  ASSERT_TRUE(media);
  EXPECT_EQ(media->status, 200);
  EXPECT_EQ(media->body, read_file(hits["results"][0]["key"].get<std::string>()));
  // An image finds itself.
  const json self =
      post_json("/v1/search", {{"image", "data:image/png;base64," + image_base64(2)}, {"k", 1}});
  EXPECT_EQ(self["results"][0]["key"],
            fs::absolute(path("shapes/images/test/000002.png")).lexically_normal().string());
  const json composed =
      post_json("/v1/search", {{"image", image_base64(2)}, {"text", "make it red"}, {"k", 3}});
  EXPECT_EQ(composed["results"].size(), 3u);

  const json classes =
      post_json("/v1/classify",
                {{"image", image_base64(3)}, {"labels", {"a red circle", "a blue square", "a green star"}}});
  double sum = 0;
  for (const auto& l : classes["labels"]) sum += l["score"].get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-5);

  auto r = get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["status"], "ok");
  r = get("/openapi.json");
  ASSERT_TRUE(r);
  EXPECT_TRUE(json::parse(r->body)["paths"].contains("/v1/search"));
  r = get("/");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("<form id=\"query\""), std::string::npos);
  r = get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("mmlearn_requests_total{route=\"/v1/search\",status=\"200\"}"), std::string::npos);
  EXPECT_NE(r->body.find("mmlearn_batch_inputs_count{model=\"clip\"}"), std::string::npos);
}

// A PNG whose header claims width x height, with no pixels behind it.
std::string png_header(uint32_t width, uint32_t height) {
  std::string ihdr = "IHDR";
  for (uint32_t v : {width, height})
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<char>((v >> s) & 0xff));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(ihdr.data()), static_cast<uInt>(ihdr.size()));
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\x00\x00\x00\x0d", 4) + ihdr;
  for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<char>((crc >> s) & 0xff));
  return png;
}

TEST_F(Serve, EveryBadRequestGetsA4xxAndTheServerKeepsServing) {
  struct Case {
    std::string name, route, body;
    int status;
    std::string says;  // a part of the message
    std::string type = "application/json";
  };
  const std::string huge = png_header(50000, 50000);
  const std::vector<Case> cases = {
      {"not an image", "/v1/embeddings", json{{"input", {{{"image", encode_base64("hello, world")}}}}}.dump(),
       400, "image"},
      {"a PNG claiming 50000 x 50000", "/v1/search", json{{"image", encode_base64(huge)}}.dump(), 400,
       "50000"},
      {"not base64", "/v1/search", json{{"image", "%%%"}}.dump(), 400, "base64"},
      {"invalid JSON", "/v1/search", "{\"text\": ", 400, "not valid JSON"},
      {"not an object", "/v1/search", "[1, 2]", 400, "object"},
      {"wrong content type", "/v1/search", json{{"text", "x"}}.dump(), 415, "Content-Type", "text/plain"},
      {"k = 10^9", "/v1/search", json{{"text", "x"}, {"k", 1000000000}}.dump(), 400, "\"k\""},
      {"k = -3", "/v1/search", json{{"text", "x"}, {"k", -3}}.dump(), 400, "\"k\""},
      {"k a string", "/v1/search", json{{"text", "x"}, {"k", "5"}}.dump(), 400, "integer"},
      {"text a number", "/v1/search", json{{"text", 5}}.dump(), 400, "must be a string"},
      {"labels not a list", "/v1/classify", json{{"text", "x"}, {"labels", "a"}}.dump(), 400, "labels"},
      {"unknown field", "/v1/search", json{{"text", "x"}, {"colour", "red"}}.dump(), 400, "colour"},
      {"empty query", "/v1/search", "{}", 400, "needs a query"},
      {"empty text", "/v1/search", json{{"text", ""}}.dump(), 400, "empty"},
      {"audio and text", "/v1/search", json{{"text", "x"}, {"audio", "AAAA"}}.dump(), 400, "one of"},
      {"no input", "/v1/embeddings", "{}", 400, "input"},
      {"unknown model", "/v1/embeddings", json{{"input", "x"}, {"model", "nope"}}.dump(), 404, "nope"},
      {"audio to a model without audio", "/v1/embeddings", json{{"input", {{{"audio", "AAAA"}}}}}.dump(), 400,
       "audio"},
      {"transcription without a recognizer", "/v1/audio/transcriptions", json{{"audio", "AAAA"}}.dump(), 400,
       "transcribe"},
      {"unknown index", "/v1/search", json{{"text", "x"}, {"index", "nope"}}.dump(), 404, "nope"},
      {"too large a body", "/v1/search", json{{"text", std::string(2 << 20, 'a')}}.dump(), 413, "limit"},
      {"no such route", "/v1/nothing", "{}", 404, "route"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = post(c.route, c.body, c.type);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->body;
    const json answer = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(answer.is_object()) << r->body;
    const std::string message = answer["error"]["message"];
    EXPECT_NE(message.find(c.says), std::string::npos) << message;
    const auto health = get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
  }
  const auto media = get("/v1/media?index=idx&key=/etc/passwd");
  ASSERT_TRUE(media);
  EXPECT_EQ(media->status, 404);  // only indexed files are served
}

TEST_F(Serve, ConcurrentRequestsShareBatchesAndGetTheirOwnAnswers) {
  auto model = open_model(path("clip"));
  const int n = 24;
  std::vector<std::string> texts;
  for (int i = 0; i < n; ++i) texts.push_back(str_cat("a picture of ", i, " red circles"));
  const auto expected = model->embed("text", texts, Precision::fp32);
  std::vector<json> answers(n);
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i)
    clients.emplace_back([&, i] { answers[i] = post_json("/v1/embeddings", {{"input", texts[i]}}); });
  for (auto& t : clients) t.join();
  for (int i = 0; i < n; ++i) expect_close(floats(answers[i]["data"][0]["embedding"]), expected[i]);
}

TEST(ServeCli, StopsOnSigtermAfterAnswering) {
  const fs::path dir = test::temp_dir("serve-cli");
  auto r = test::run_cli(str_cat("data shapes --out ", (dir / "shapes").string(), " --train 32 --test 4"));
  ASSERT_EQ(r.status, 0) << r.output;
  r = test::run_cli(str_cat("train --preset clip-tiny --data ", (dir / "shapes").string(), " --out ",
                            (dir / "clip").string(), " --steps 1 --batch-size 8"));
  ASSERT_EQ(r.status, 0) << r.output;
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    const std::string model = (dir / "clip").string();
    ::execl(MMLEARN_CLI, MMLEARN_CLI, "--quiet", "serve", "--model", model.c_str(), "--port", "0", "--json",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
  ::close(out[0]);
  const json ready = json::parse(line, nullptr, false);
  ASSERT_TRUE(ready.is_object()) << line;
  httplib::Client client("127.0.0.1", ready["port"].get<int>());
  const auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace mmlearn::serve
