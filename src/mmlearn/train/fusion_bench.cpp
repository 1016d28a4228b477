#include "mmlearn/train/fusion_bench.h"

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <thread>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/eval/classifier_eval.h"
#include "mmlearn/fusion/fusion.h"
#include "mmlearn/train/trainer.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

std::string percent(double v) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%.1f", 100 * v);
  return buffer;
}

std::string escape_xml(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

// Horizontal bars of held-out accuracy, one per row, coloured by family, with dashed lines at the best
// single-modality ceiling and at 95 %.
std::string bar_chart(const json& result) {
  const auto& rows = result["rows"];
  const int bar_h = 22, left = 190, width = 460, top = 40, n = int(rows.size());
  const int height = top + n * bar_h + 40;
  auto x_of = [&](double v) { return left + v * width; };
  std::string svg =
      str_cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", left + width + 70, "\" height=\"", height,
              "\" font-family=\"sans-serif\" font-size=\"12\">\n",
              "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
              "<text x=\"10\" y=\"20\" font-size=\"14\">Held-out accuracy by fusion (",
              escape_xml(result["data"].get<std::string>()), ", ", result["steps"], " steps)</text>\n");
  static const std::map<std::string, std::string> kColour = {
      {"unimodal", "#999999"}, {"early", "#4c78a8"}, {"late", "#e45756"}, {"hybrid", "#54a24b"}};
  for (int i = 0; i < n; ++i) {
    const auto& r = rows[size_t(i)];
    const double acc = r["accuracy"].get<double>();
    const int y = top + i * bar_h;
    svg += str_cat("<text x=\"", left - 6, "\" y=\"", y + 15, "\" text-anchor=\"end\">",
                   escape_xml(r["name"].get<std::string>()), "</text>\n", "<rect x=\"", left, "\" y=\"",
                   y + 3, "\" width=\"", x_of(acc) - left, "\" height=\"", bar_h - 6, "\" fill=\"",
                   kColour.at(r["family"].get<std::string>()), "\"/>\n", "<text x=\"", x_of(acc) + 4,
                   "\" y=\"", y + 15, "\">", percent(acc), "%</text>\n");
  }
  auto vline = [&](double v, const std::string& label, const std::string& colour) {
    svg += str_cat("<line x1=\"", x_of(v), "\" y1=\"", top, "\" x2=\"", x_of(v), "\" y2=\"", top + n * bar_h,
                   "\" stroke=\"", colour, "\" stroke-dasharray=\"4 3\"/>\n", "<text x=\"", x_of(v),
                   "\" y=\"", top + n * bar_h + 16, "\" text-anchor=\"middle\" fill=\"", colour, "\">",
                   escape_xml(label), "</text>\n");
  };
  if (result["best_unimodal_ceiling"].is_number())
    vline(result["best_unimodal_ceiling"].get<double>(), "one-modality ceiling", "#555555");
  vline(0.95, "95%", "#222222");
  svg += str_cat(
      "<text x=\"", left, "\" y=\"", height - 6,
      "\" fill=\"#555555\">grey: one modality; blue: early; red: late; green: hybrid</text>\n</svg>\n");
  return svg;
}

}  // namespace

json run_fusion_bench(const FusionBenchOptions& o) {
  check(fs::exists(o.data / "train.jsonl") && fs::exists(o.data / "test.jsonl"),
        "bench fusion: ", o.data.string(),
        " needs train.jsonl and test.jsonl (make one with `mmlearn data shapes --task mood`)");
  std::vector<std::string> methods = o.methods.empty() ? fusion_methods() : o.methods;
  for (auto& m : methods) m = canonical_fusion_method(m);

  json result{{"data", o.data.filename().string().empty() ? o.data.string() : o.data.filename().string()},
              {"steps", o.steps},
              {"batch_size", o.batch_size},
              {"seed", o.seed},
              {"threads", torch::get_num_threads()},
              {"cpu", cpu_name()},
              {"cores", std::thread::hardware_concurrency()},
              {"ceiling", nullptr},
              {"best_unimodal_ceiling", nullptr},
              {"rows", json::array()}};
  if (fs::exists(o.data / "ceiling.json")) {
    const json ceiling = read_json_file(o.data / "ceiling.json");
    if (ceiling.contains("splits") && ceiling["splits"].contains("test")) {
      result["ceiling"] = ceiling["splits"]["test"];
      double best = 0;
      for (const auto& m : o.modalities)
        if (ceiling["splits"]["test"].contains(m))
          best = std::max(best, ceiling["splits"]["test"][m].get<double>());
      result["best_unimodal_ceiling"] = best;
    }
  }

  struct Job {
    std::string name, family, method;
    std::vector<std::string> modalities;
  };
  std::vector<Job> jobs;
  for (const auto& m : o.modalities) jobs.push_back({m + " only", "unimodal", "concat", {m}});
  for (const auto& m : methods) {
    std::string family;
    for (const auto& info : fusion_catalogue())
      if (info.name == m) family = info.family;
    jobs.push_back({m, family, m, o.modalities});
  }
  fs::create_directories(o.work);
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job& job = jobs[i];
    log_info("bench fusion ", i + 1, "/", jobs.size(), ": ", job.name);
    const fs::path run = o.work / (job.family == "unimodal" ? job.modalities[0] + "-only" : job.method);
    fs::remove_all(run);
    const auto trained = train({.task = "classify",
                                .data = o.data,
                                .out = run,
                                .steps = o.steps,
                                .batch_size = o.batch_size,
                                .seed = o.seed,
                                .modalities = job.modalities,
                                .fusion = job.method});
    json row{{"name", job.name},
             {"family", job.family},
             {"method", job.method},
             {"modalities", job.modalities},
             {"accuracy", trained.final_eval["accuracy"]},
             {"macro_f1", trained.final_eval["macro_f1"]},
             {"parameters", trained.parameters},
             {"seconds", trained.seconds},
             {"without", json::object()}};
    if (job.modalities.size() > 1) {
      auto bundle = load_fusion_classifier(run);
      const auto test = load_classifier_data(bundle, o.data / "test.jsonl");
      for (const auto& m : job.modalities)
        row["without"][m] = evaluate_fusion_classifier(bundle, test, {m})["accuracy"];
    }
    result["rows"].push_back(row);
  }
  return result;
}

void write_fusion_bench(const json& result, const fs::path& out_dir) {
  fs::create_directories(out_dir);
  std::string md =
      str_cat("# Fusion benchmark\n\nHeld-out split of `", result["data"].get<std::string>(),
              "`; every model ", result["steps"], " steps of ", result["batch_size"], " from scratch, seed ",
              result["seed"], ", the same encoders. Written by `mmlearn bench fusion` on ",
              result["cpu"].get<std::string>(), " (", result["threads"], " threads).\n\n");
  if (result["ceiling"].is_object())
    md += str_cat("Best accuracy any single-modality model can reach on this split (ceiling.json): ",
                  result["ceiling"].dump(), ".\n\n");
  md += "| model | family | accuracy | macro-F1 |";
  std::vector<std::string> modalities;
  for (const auto& r : result["rows"])
    if (r["modalities"].size() > 1) {
      modalities = r["modalities"].get<std::vector<std::string>>();
      break;
    }
  for (const auto& m : modalities) md += " without " + m + " |";
  md += " parameters | training time |\n|---|---|---:|---:|";
  for (size_t i = 0; i < modalities.size(); ++i) md += "---:|";
  md += "---:|---:|\n";
  for (const auto& r : result["rows"]) {
    md +=
        str_cat("| ", r["name"].get<std::string>(), " | ", r["family"].get<std::string>(), " | ",
                percent(r["accuracy"].get<double>()), " % | ", percent(r["macro_f1"].get<double>()), " % |");
    for (const auto& m : modalities)
      md += r["without"].contains(m) ? str_cat(" ", percent(r["without"][m].get<double>()), " % |") : " – |";
    md += str_cat(" ", r["parameters"], " | ", int64_t(std::lround(r["seconds"].get<double>())), " s |\n");
  }
  md += "\n![accuracy by fusion](fusion_bench.svg)\n";
  write_file_atomic(out_dir / "fusion_bench.md", md);
  write_file_atomic(out_dir / "fusion_bench.svg", bar_chart(result));
  write_file_atomic(out_dir / "fusion_bench.json", result.dump(2) + "\n");
}

}  // namespace mmlearn
