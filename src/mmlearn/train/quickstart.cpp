#include "mmlearn/train/quickstart.h"

#include <chrono>

#include "mmlearn/core/log.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/image_text_dataset.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/data/synthetic.h"
#include "mmlearn/eval/clip_eval.h"
#include "mmlearn/eval/report.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/train/trainer.h"

namespace mmlearn {
namespace fs = std::filesystem;

QuickstartResult run_quickstart(const QuickstartOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path data_dir = o.out / "shapes", run = o.out / "run";

  log_info("1/4 data: ", o.n_train, " training and ", o.n_test, " held-out shapes scenes -> ",
           data_dir.string());
  {
    Progress bar("shapes", o.n_train + o.n_test, "rec");
    data::prepare_data_dir(data_dir, /*overwrite=*/true);  // the quickstart always starts afresh
    data::generate_shapes(data_dir, {.n_train = o.n_train, .n_test = o.n_test, .seed = o.seed},
                          [&](int64_t done, int64_t) { bar.update(done); });
  }

  log_info("2/4 train: clip-tiny, tokenizer learned from the captions -> ", run.string());
  if (fs::exists(run)) fs::remove_all(run);  // the quickstart always starts its run afresh
  train({.preset = "clip-tiny",
         .data = data_dir,
         .out = run,
         .steps = o.steps,
         .batch_size = o.batch_size,
         .seed = o.seed});

  log_info("3/4 evaluate on ", o.n_test, " held-out scenes and search");
  ClipBundle clip = load_clip(run);
  auto test = data::load_image_text(data_dir / "test.jsonl", clip.tokenizer,
                                    {.image_size = clip.model->config.vision.image_size,
                                     .context_length = clip.model->config.text.context_length});
  QuickstartResult result;
  result.eval = evaluate_clip(clip.model, clip.tokenizer, test, data_dir / "classes.json");

  auto image_embeds = embed_images(clip.model, test.images);
  auto query_embeds = embed_texts(
      clip.model, tokenize_batch(clip.tokenizer, o.queries, clip.model->config.text.context_length));
  auto [scores, top] = torch::matmul(query_embeds, image_embeds.t()).topk(6, 1);
  std::vector<SearchExample> searches;
  for (size_t q = 0; q < o.queries.size(); ++q) {
    SearchExample example{o.queries[q], {}};
    for (int64_t k = 0; k < top.size(1); ++k) {
      const int64_t i = top[q][k].item<int64_t>();
      const auto& record = test.manifest.records[i];
      example.hits.push_back({test.manifest.resolve(record.json["image"].get<std::string>()), test.texts[i],
                              scores[q][k].item<double>()});
    }
    searches.push_back(std::move(example));
  }

  log_info("4/4 report -> ", (run / "report.html").string());
  write_run_report(run / "report.html", run / "metrics.jsonl", result.eval, searches,
                   "mmlearn quickstart: clip-tiny on shapes");
  result.run = run;
  result.report = run / "report.html";
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace mmlearn
