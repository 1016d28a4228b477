#include "mmlearn/models/fusion_classifier.h"

#include <torch/torch.h>

#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/models/clip.h"
#include "mmlearn/models/clip_pretrained.h"
#include "mmlearn/models/weight_files.h"

namespace mmlearn {
namespace fs = std::filesystem;
using data::MultimodalExample;
using nlohmann::json;

const std::vector<std::string>& classifier_modalities() {
  static const std::vector<std::string> names = {"image", "text", "audio"};
  return names;
}

namespace {

// The fields the parts share are set once, here: the fusion's inputs and the encoders' widths.
FusionClassifierConfig resolved(FusionClassifierConfig c) {
  c.fusion.method = canonical_fusion_method(c.fusion.method);
  c.fusion.modalities = c.modalities;
  c.fusion.dim = c.dim;
  c.fusion.n_outputs = int64_t(c.labels.size());
  c.image.dim = c.text.width = c.audio.width = c.dim;
  return c;
}

void validate(const FusionClassifierConfig& c, const std::string& where) {
  check(!c.modalities.empty(), where, ": no modalities (choose from image, text, audio)");
  for (const auto& m : c.modalities)
    check(std::find(classifier_modalities().begin(), classifier_modalities().end(), m) !=
              classifier_modalities().end(),
          where, ": unknown modality \"", m, "\" (choose from image, text, audio)");
  check(c.labels.size() >= 2, where, ": a classifier needs at least two labels, got ", c.labels.size());
  check(c.dim >= 4 && c.dim <= 16384 && c.hidden >= 1 && c.hidden <= 1'000'000, where,
        ": dim must be in [4, 16384] and hidden in [1, 10^6]");
  check(c.labels.size() <= 1'000'000, where, ": more than 10^6 labels");
  check(c.dim % c.text.heads == 0 && c.dim % c.audio.heads == 0 && c.dim % c.fusion.heads == 0, where,
        ": dim ", c.dim, " must be divisible by the text, audio and fusion heads");
}

// In the image tower's own type (fp64 when training in fp64).
torch::Tensor normalize_pixels(const torch::Tensor& pixels_u8, torch::nn::Module& tower) {
  return (pixels_u8.to(tower.parameters().front().scalar_type()) / 255.0 - 0.5) / 0.25;
}

}  // namespace

bool reads_modality(const FusionClassifierConfig& c, const std::string& modality) {
  return std::find(c.modalities.begin(), c.modalities.end(), modality) != c.modalities.end();
}

json to_json(const FusionClassifierConfig& c) {
  return {{"model_type", "fusion_classifier"},
          {"modalities", c.modalities},
          {"labels", c.labels},
          {"dim", c.dim},
          {"hidden", c.hidden},
          {"fusion", to_json(c.fusion)},
          {"image", {{"image_size", c.image.image_size}, {"channels", c.image.channels}}},
          {"text", to_json(c.text)},
          {"audio",
           {{"n_mels", c.audio.n_mels},
            {"n_ctx", c.audio.n_ctx},
            {"heads", c.audio.heads},
            {"layers", c.audio.layers}}}};
}

FusionClassifierConfig fusion_classifier_config_from_json(const json& j, const std::string& where) {
  check(string_value(j, "model_type") == "fusion_classifier", where, " is not a fusion classifier's config");
  FusionClassifierConfig c;
  read_field(j, "modalities", c.modalities, where);
  read_field(j, "labels", c.labels, where);
  read_field(j, "dim", c.dim, where);
  read_field(j, "hidden", c.hidden, where);
  if (j.contains("fusion")) c.fusion = fusion_config_from_json(j["fusion"], where + " (fusion)");
  if (j.contains("image")) {
    read_field(j["image"], "image_size", c.image.image_size, where + " (image)");
    read_field(j["image"], "channels", c.image.channels, where + " (image)");
  }
  if (j.contains("text")) read_text_config(j["text"], c.text, where + " (text)");
  if (j.contains("audio")) {
    const json& a = j["audio"];
    read_field(a, "n_mels", c.audio.n_mels, where + " (audio)");
    read_field(a, "n_ctx", c.audio.n_ctx, where + " (audio)");
    read_field(a, "heads", c.audio.heads, where + " (audio)");
    read_field(a, "layers", c.audio.layers, where + " (audio)");
  }
  validate(resolved(c), where);
  return c;
}

FusionClassifierImpl::FusionClassifierImpl(const FusionClassifierConfig& given) : config(resolved(given)) {
  validate(config, "fusion classifier");
  if (reads_modality(config, "image")) image = register_module("image", ConvEncoder(config.image));
  if (reads_modality(config, "text"))
    text = register_module("text", TextTransformer(config.text, config.dim, Activation::gelu, 1e-5));
  if (reads_modality(config, "audio"))
    audio = register_module("audio", WhisperEncoder(whisper_encoder_config(config.audio)));
  fusion = register_module("fusion", make_fusion(config.fusion));
  if (!is_late_fusion(config.fusion.method)) {
    head = register_module(
        "head", torch::nn::Sequential(torch::nn::Linear(fusion->output_dim, config.hidden), torch::nn::GELU(),
                                      torch::nn::Linear(config.hidden, int64_t(config.labels.size()))));
  }
}

ModalityOutputs FusionClassifierImpl::encode(const ClassifierBatch& b) {
  ModalityOutputs out;
  auto with_presence = [&](const std::string& m, EncoderOutput e) {
    auto it = b.present.find(m);
    if (it != b.present.end()) e.mask = e.mask & it->second.to(torch::kBool).unsqueeze(1);
    out[m] = std::move(e);
  };
  auto given = [&](const std::string& m, const torch::Tensor& input) {
    if (!input.defined()) return false;
    check(reads_modality(config, m), "this model was not trained with ", m, " (it reads ",
          join(config.modalities), "); leave that input out");
    return true;
  };
  if (given("image", b.pixels)) with_presence("image", image(normalize_pixels(b.pixels, *image)));
  if (given("text", b.ids)) with_presence("text", text(b.ids));
  if (given("audio", b.mel)) {
    auto features = audio(b.mel);  // [B, n_ctx, dim]
    // Positions that hold sound (two 10 ms frames each); the silence after a clip is masked.
    const int64_t per_position = 2 * mmlearn::audio::whisper::hop_length;
    auto positions =
        torch::div(b.samples + per_position - 1, per_position, "floor").clamp(1, features.size(1));
    auto mask = torch::arange(features.size(1), b.samples.options()).unsqueeze(0) < positions.unsqueeze(1);
    with_presence("audio", {features, mask, masked_mean(features, mask)});
  }
  check(!out.empty(), "no input given: the model reads ", config.modalities.size(),
        " modalities and got none");
  return out;
}

ClassifierOutput FusionClassifierImpl::forward(const ClassifierBatch& batch) {
  auto encoded = encode(batch);
  auto fused = fusion->forward(encoded);
  return {head ? head->forward(fused.pooled) : fused.pooled, fused, std::move(encoded)};
}

void save_fusion_classifier(const fs::path& dir, const FusionClassifierBundle& bundle) {
  fs::create_directories(dir);
  write_file_atomic(dir / "config.json", to_json(bundle.model->config).dump(2) + "\n");
  save_parameters(*bundle.model, dir / "model.safetensors", {{"format", "pt"}, {"producer", "mmlearn"}});
  if (bundle.tokenizer) bundle.tokenizer->save(dir);
}

FusionClassifierBundle load_fusion_classifier(const fs::path& dir) {
  for (const char* name : {"config.json", "model.safetensors"})
    check(fs::exists(dir / name), "model directory ", dir.string(), " has no ", name,
          " (a classifier directory holds config.json, model.safetensors and, when it reads text, vocab.json "
          "and merges.txt)");
  const auto config =
      fusion_classifier_config_from_json(read_json_file(dir / "config.json"), (dir / "config.json").string());
  const TensorMap weights = load_safetensors(dir / "model.safetensors");
  const FusionClassifierConfig r = resolved(config);
  const double d = static_cast<double>(r.dim);
  check_config_fits_weights(
      (reads_modality(r, "text") ? least_parameters(r.text) : 0) +
          (reads_modality(r, "audio") ? static_cast<double>(r.audio.layers) * 12 * d * d : 0) +
          (is_late_fusion(r.fusion.method) ? 0 : d * static_cast<double>(r.hidden)),
      weights, (dir / "config.json").string(), (dir / "model.safetensors").string());
  FusionClassifierBundle bundle{FusionClassifier(config), std::nullopt};
  if (reads_modality(config, "text")) {
    bundle.tokenizer = text::BpeTokenizer::load(dir);
    check(bundle.tokenizer->vocab_size() <= config.text.vocab_size &&
              bundle.tokenizer->eot_id() == config.text.eot_token_id,
          dir.string(),
          ": the tokenizer files do not fit the model's text encoder (wrong vocab.json/merges.txt?)");
  }
  load_parameters(*bundle.model, weights, (dir / "model.safetensors").string());
  bundle.model->eval();
  return bundle;
}

namespace {

torch::Tensor bool_tensor(const std::vector<int64_t>& values) {
  return torch::tensor(values).to(torch::kBool);
}

}  // namespace

void drop_modalities(ClassifierBatch& batch, double p, torch::Generator& generator, int64_t offset,
                     int64_t group) {
  if (p <= 0 || batch.present.size() < 2) return;
  std::vector<std::string> names;
  std::vector<torch::Tensor> columns;
  for (const auto& [m, present] : batch.present) {
    names.push_back(m);
    columns.push_back(present);
  }
  auto present = torch::stack(columns, 1);  // [B, M]
  auto draw = [&] {
    return torch::rand({group, present.size(1)}, generator).narrow(0, offset, present.size(0));
  };
  auto kept = present & (draw() >= p);
  // Where nothing is left, keep one of the example's own modalities, chosen at random.
  auto one =
      torch::zeros_like(present).scatter_(1, (draw() * present.to(torch::kFloat)).argmax(1, true), true);
  kept = torch::where(kept.any(1, true), kept, one & present);
  for (size_t i = 0; i < names.size(); ++i) batch.present[names[i]] = kept.select(1, int64_t(i));
}

ClassifierBatch make_classifier_batch(const FusionClassifierBundle& bundle,
                                      const std::vector<const MultimodalExample*>& examples,
                                      const std::set<std::string>& hide) {
  const auto& c = bundle.model->config;
  auto wanted = [&](const std::string& m) { return reads_modality(c, m) && !hide.count(m); };
  ClassifierBatch b;
  if (wanted("image")) {
    std::vector<torch::Tensor> pixels;
    std::vector<int64_t> present;
    const auto blank = torch::zeros({3, c.image.image_size, c.image.image_size}, torch::kUInt8);
    for (const auto* ex : examples) {
      pixels.push_back(ex->pixels.defined() ? ex->pixels : blank);
      present.push_back(ex->pixels.defined());
    }
    if (std::count(present.begin(), present.end(), 1)) {
      b.pixels = torch::stack(pixels);
      b.present["image"] = bool_tensor(present);
    }
  }
  if (wanted("text")) {
    std::vector<std::string> texts;
    std::vector<int64_t> present;
    for (const auto* ex : examples) {
      texts.push_back(ex->text.value_or(""));
      present.push_back(ex->text.has_value());
    }
    if (std::count(present.begin(), present.end(), 1)) {
      b.ids = tokenize_batch(*bundle.tokenizer, texts, c.text.context_length);
      b.present["text"] = bool_tensor(present);
    }
  }
  if (wanted("audio")) {
    static const data::AudioClip silence{std::vector<int16_t>(160, 0), ""};
    std::vector<const data::AudioClip*> clips;
    std::vector<int64_t> present, samples;
    for (const auto* ex : examples) {
      clips.push_back(ex->audio ? &*ex->audio : &silence);
      present.push_back(ex->audio.has_value());
      samples.push_back(int64_t(clips.back()->samples.size()));
    }
    if (std::count(present.begin(), present.end(), 1)) {
      b.mel = data::log_mel_batch(clips, c.audio.n_mels, 2 * c.audio.n_ctx);
      b.samples = torch::tensor(samples);
      b.present["audio"] = bool_tensor(present);
    }
  }
  return b;
}

data::MultimodalDataset load_classifier_data(const FusionClassifierBundle& bundle, const fs::path& manifest,
                                             bool require_labels) {
  const auto& c = bundle.model->config;
  return data::load_multimodal(manifest, {.modalities = c.modalities,
                                          .labels = c.labels,
                                          .require_labels = require_labels,
                                          .image_size = c.image.image_size,
                                          .audio_window_samples = clap_window_samples(c.audio)});
}

}  // namespace mmlearn
