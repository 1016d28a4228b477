#include "mmlearn/models/clap.h"

#include <torch/torch.h>

#include <cmath>

#include "mmlearn/audio/log_mel.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/precision.h"
#include "mmlearn/models/clip.h"
#include "mmlearn/models/weight_files.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

json to_json(const ClapConfig& c) {
  return {{"model_type", "clap"},
          {"preset", c.preset},
          {"embed_dim", c.embed_dim},
          {"logit_scale_init", c.logit_scale_init},
          {"audio",
           {{"n_mels", c.audio.n_mels},
            {"n_ctx", c.audio.n_ctx},
            {"width", c.audio.width},
            {"heads", c.audio.heads},
            {"layers", c.audio.layers}}},
          {"text", to_json(c.text)}};
}

ClapConfig clap_config_from_json(const json& j, const std::string& where) {
  check(j.is_object(), where, ": config must be a JSON object");
  check(string_value(j, "model_type") == "clap", where, ": model_type ",
        j.contains("model_type") ? j["model_type"].dump() : "(missing)",
        " is not an audio–text (clap) model");
  ClapConfig c;
  read_field(j, "preset", c.preset, where);
  read_field(j, "embed_dim", c.embed_dim, where);
  read_field(j, "logit_scale_init", c.logit_scale_init, where);
  if (j.contains("audio")) {
    const json& a = j["audio"];
    const std::string w = where + " (audio)";
    read_field(a, "n_mels", c.audio.n_mels, w);
    read_field(a, "n_ctx", c.audio.n_ctx, w);
    read_field(a, "width", c.audio.width, w);
    read_field(a, "heads", c.audio.heads, w);
    read_field(a, "layers", c.audio.layers, w);
  }
  if (j.contains("text")) read_text_config(j["text"], c.text, where + " (text)");
  for (auto [value, field] : {std::pair{c.embed_dim, "embed_dim"},
                              {c.audio.n_ctx, "audio.n_ctx"},
                              {c.audio.width, "audio.width"},
                              {c.audio.heads, "audio.heads"}})
    check(value > 0 && value <= 100'000, where, ": field \"", field, "\" must be in 1..100000, got ", value);
  check(c.audio.n_mels == 80 || c.audio.n_mels == 128, where, ": audio.n_mels must be 80 or 128");
  check(c.audio.layers >= 0 && c.audio.width % c.audio.heads == 0, where,
        ": audio.width must be divisible by audio.heads");
  return c;
}

ClapConfig clap_preset(const std::string& name) {
  // clap-tiny's audio tower has the dimensions of whisper-tiny-shapes' encoder, so a trained recognizer can
  // seed it; its text tower is clip-tiny's. vocab_size and eot_token_id come from the learned tokenizer.
  if (name == "clap-tiny") {
    ClapConfig c;
    c.preset = name;
    c.embed_dim = 128;
    c.audio = {.n_mels = 80, .n_ctx = 400, .width = 192, .heads = 4, .layers = 3};
    c.text = {.context_length = 32,
              .vocab_size = 1024,
              .width = 128,
              .layers = 3,
              .heads = 4,
              .eot_token_id = 1023};
    return c;
  }
  throw Error(str_cat("unknown audio–text preset \"", name, "\" (known: clap-tiny)"));
}

std::vector<std::string> clap_preset_names() { return {"clap-tiny"}; }

int64_t clap_window_samples(const ClapAudioConfig& a) { return 2 * a.n_ctx * audio::whisper::hop_length; }

WhisperEncoderConfig whisper_encoder_config(const ClapAudioConfig& a) {
  return {a.n_mels, a.n_ctx, a.width, a.heads, a.layers};
}

ClapImpl::ClapImpl(const ClapConfig& c) : config(c) {
  audio = register_module("audio", WhisperEncoder(whisper_encoder_config(c.audio)));
  audio_projection = register_parameter(
      "audio_projection", torch::randn({c.audio.width, c.embed_dim}) / std::sqrt(c.audio.width));
  text = register_module("text", TextTransformer(c.text, c.embed_dim, Activation::gelu, 1e-5));
  logit_scale = register_parameter("logit_scale", torch::full({}, c.logit_scale_init));
}

torch::Tensor ClapImpl::encode_audio(const torch::Tensor& mel, const torch::Tensor& samples) {
  auto features = audio(mel);  // [B, n_ctx, width]
  // Positions that hold audio: each covers two 10 ms frames. The silence after a clip is left out of the
  // mean, so a clip embeds the same whatever the window it sits in.
  const int64_t samples_per_position = 2 * mmlearn::audio::whisper::hop_length;
  auto positions = torch::div(samples + samples_per_position - 1, samples_per_position, "floor")
                       .clamp(1, features.size(1));
  auto mask = (torch::arange(features.size(1), samples.options()).unsqueeze(0) < positions.unsqueeze(1))
                  .to(features.scalar_type())
                  .unsqueeze(-1);
  auto pooled = (features * mask).sum(1) / positions.unsqueeze(1).to(features.scalar_type());
  // In fp32 even under bf16 autocast: the similarities built from these need the precision.
  return torch::nn::functional::normalize(full_precision(torch::matmul(pooled, audio_projection)),
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

torch::Tensor ClapImpl::encode_text(const torch::Tensor& ids) {
  return torch::nn::functional::normalize(full_precision(text(ids).pooled),
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

void load_audio_tower(Clap& model, const Whisper& whisper, const std::string& where) {
  const WhisperEncoderConfig w = encoder_config(whisper->config);
  const WhisperEncoderConfig want = whisper_encoder_config(model->config.audio);
  check(w == want, where, ": its encoder (", w.n_mels, " mels, ", w.n_ctx, " positions, width ", w.n_state,
        ", ", w.n_head, " heads, ", w.n_layer, " layers) does not match the audio tower (", want.n_mels,
        " mels, ", want.n_ctx, " positions, width ", want.n_state, ", ", want.n_head, " heads, ",
        want.n_layer, " layers)");
  torch::NoGradGuard no_grad;
  load_parameters(*model->audio, parameter_map(*whisper->encoder), where);
}

void save_clap(const fs::path& dir, const Clap& model, const text::BpeTokenizer& tokenizer) {
  fs::create_directories(dir);
  write_file_atomic(dir / "config.json", to_json(model->config).dump(2) + "\n");
  save_parameters(*model, dir / "model.safetensors", {{"format", "pt"}, {"producer", "mmlearn"}});
  tokenizer.save(dir);
}

ClapBundle load_clap(const fs::path& dir) {
  for (const char* name : {"config.json", "model.safetensors", "vocab.json", "merges.txt"})
    check(fs::exists(dir / name), "model directory ", dir.string(), " has no ", name,
          " (an audio–text model directory holds config.json, model.safetensors, vocab.json and merges.txt)");
  const ClapConfig config =
      clap_config_from_json(read_json_file(dir / "config.json"), (dir / "config.json").string());
  const TensorMap weights = load_safetensors(dir / "model.safetensors");
  check_config_fits_weights(
      static_cast<double>(config.audio.layers) * 12 * config.audio.width * config.audio.width +
          least_parameters(config.text),
      weights, (dir / "config.json").string(), (dir / "model.safetensors").string());
  ClapBundle bundle{Clap(config), text::BpeTokenizer::load(dir)};
  check(bundle.tokenizer.vocab_size() <= config.text.vocab_size &&
            bundle.tokenizer.eot_id() == config.text.eot_token_id,
        dir.string(),
        ": the tokenizer files do not fit the model's text tower (wrong vocab.json/merges.txt?)");
  load_parameters(*bundle.model, weights, (dir / "model.safetensors").string());
  bundle.model->eval();
  return bundle;
}

}  // namespace mmlearn
