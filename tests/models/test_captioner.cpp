// The captioner over a CLIP image tower: through each connector it learns the captions of a few scenes (and,
// asked a question first, their answers), writes them back, and a saved model writes the same.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../test_util.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/data/manifest.h"
#include "mmlearn/data/record_media.h"
#include "mmlearn/data/shapes.h"
#include "mmlearn/models/captioner.h"
#include "mmlearn/models/clip.h"
#include "mmlearn/text/clean_up.h"
#include "mmlearn/text/learn_tokenizer.h"

namespace mmlearn {
namespace {
namespace fs = std::filesystem;

TEST(Captioner, LearnsCaptionsAndAnswersThroughEveryConnectorAndSavesThem) {
  const fs::path dir = test::temp_dir("scenes");
  data::generate_shapes(dir, {.n_train = 4, .n_test = 0, .seed = 3, .image_size = 32});
  const auto manifest = data::read_manifest(dir / "train.jsonl");
  const auto tokenizer = text::learn_tokenizer(manifest, 560);
  std::vector<torch::Tensor> images;
  std::vector<std::string> captions, questions, answers;
  for (const auto& r : manifest.records) {
    images.push_back(data::read_record_image(manifest, r, 32));
    captions.push_back(
        text::clean_up_tokenization(tokenizer.decode(tokenizer.encode(r.json["text"].get<std::string>()))));
    questions.push_back(r.json["qa"][0]["question"].get<std::string>());
    answers.push_back(r.json["qa"][0]["answer"].get<std::string>());
  }
  const auto images_u8 = torch::stack(images);
  for (auto kind : {ConnectorKind::cross_attention, ConnectorKind::prefix, ConnectorKind::queries}) {
    torch::manual_seed(0);
    ClipConfig c = clip_preset("clip-tiny-vit");
    c.vision.image_size = 32;
    c.text.vocab_size = tokenizer.vocab_size();
    c.text.eot_token_id = tokenizer.eot_id();
    auto m = make_captioner({Clip(c), tokenizer}, {.connector = kind, .width = 64, .layers = 2, .heads = 2});
    const auto pixels = m.clip.model->normalize_pixels(images_u8);
    // The image tower stays as it is (as BLIP-2's and LLaVA's first stage keep theirs): its random features
    // tell the four scenes apart.
    m.clip.model->eval();
    torch::optim::Adam adam(m.model->parameters(), torch::optim::AdamOptions(2e-3));
    const std::vector<std::string> no_prompt(4, "");
    for (int step = 0; step < 200; ++step) {
      // Captions and answers in turn: the prompt decides which the decoder writes.
      const bool caption = step % 2 == 0;
      const auto [sum, count] =
          captioner_loss(m, pixels, caption ? no_prompt : questions, caption ? captions : answers);
      adam.zero_grad();
      (sum / count).backward();
      adam.step();
    }
    m.model->eval();
    EXPECT_EQ(describe_images(m, pixels, no_prompt, {}), captions) << connector_name(kind);
    EXPECT_EQ(describe_images(m, pixels, questions, {.beam = 2}), answers) << connector_name(kind);

    const fs::path saved = test::temp_dir(connector_name(kind)) / "model";
    save_captioner(saved, m);
    auto loaded = load_captioner(saved);
    EXPECT_EQ(describe_images(loaded, pixels, no_prompt, {}), captions) << connector_name(kind);
    EXPECT_NE(test::error_of([&] {
                describe_images(loaded, pixels.narrow(0, 0, 1), {std::string(400, 'x') + " ?"}, {});
              }).find("longer than the model can read"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace mmlearn
