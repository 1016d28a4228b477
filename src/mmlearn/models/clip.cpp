#include "mmlearn/models/clip.h"

#include <cmath>

#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/precision.h"

namespace mmlearn {
using nlohmann::json;

nlohmann::json to_json(const ClipConfig& c) {
  return json{
      {"model_type", "clip"},
      {"preset", c.preset},
      {"embed_dim", c.embed_dim},
      {"activation", to_string(c.activation)},
      {"layer_norm_eps", c.layer_norm_eps},
      {"logit_scale_init", c.logit_scale_init},
      {"image_mean", c.image_mean},
      {"image_std", c.image_std},
      {"image_preprocess", c.image_preprocess},
      {"resize_shortest", c.resize_shortest},
      {"vision",
       {{"image_size", c.vision.image_size},
        {"patch_size", c.vision.patch_size},
        {"width", c.vision.width},
        {"layers", c.vision.layers},
        {"heads", c.vision.heads},
        {"mlp_ratio", c.vision.mlp_ratio},
        {"resnet_layers", c.vision.resnet_layers}}},
      {"text", to_json(c.text)},
  };
}

nlohmann::json to_json(const TextConfig& t) {
  return {{"context_length", t.context_length},
          {"vocab_size", t.vocab_size},
          {"width", t.width},
          {"layers", t.layers},
          {"heads", t.heads},
          {"mlp_ratio", t.mlp_ratio},
          {"eot_token_id", t.eot_token_id}};
}

void read_text_config(const nlohmann::json& t, TextConfig& c, const std::string& where) {
  read_field(t, "context_length", c.context_length, where);
  read_field(t, "vocab_size", c.vocab_size, where);
  read_field(t, "width", c.width, where);
  read_field(t, "layers", c.layers, where);
  read_field(t, "heads", c.heads, where);
  read_field(t, "mlp_ratio", c.mlp_ratio, where);
  read_field(t, "eot_token_id", c.eot_token_id, where);
  for (auto [value, field] : {std::pair{c.context_length, "context_length"},
                              {c.vocab_size, "vocab_size"},
                              {c.width, "width"},
                              {c.heads, "heads"}})
    check(value > 0, where, ": field \"", field, "\" must be positive, got ", value);
  check(c.width % c.heads == 0, where, ": text width is not divisible by text heads");
}

ClipConfig clip_config_from_json(const json& j, const std::string& where) {
  check(j.is_object(), where, ": config must be a JSON object");
  if (j.contains("model_type"))
    check(j["model_type"] == "clip", where, ": model_type ", j["model_type"].dump(), " is not a CLIP model");
  ClipConfig c;
  read_field(j, "preset", c.preset, where);
  read_field(j, "embed_dim", c.embed_dim, where);
  std::string activation = to_string(c.activation);
  read_field(j, "activation", activation, where);
  try {
    c.activation = parse_activation(activation);
  } catch (const Error& e) {
    throw Error(str_cat(where, ": field \"activation\": ", e.what()));
  }
  read_field(j, "layer_norm_eps", c.layer_norm_eps, where);
  read_field(j, "logit_scale_init", c.logit_scale_init, where);
  read_field(j, "image_mean", c.image_mean, where);
  read_field(j, "image_std", c.image_std, where);
  read_field(j, "image_preprocess", c.image_preprocess, where);
  read_field(j, "resize_shortest", c.resize_shortest, where);
  check(c.image_preprocess == "mmlearn" || c.image_preprocess == "openai" || c.image_preprocess == "hf",
        where, ": field \"image_preprocess\" must be \"mmlearn\", \"openai\" or \"hf\", got \"",
        c.image_preprocess, "\"");
  check(c.resize_shortest >= 0, where, ": field \"resize_shortest\" must not be negative");
  for (int i = 0; i < 3; ++i) {
    check(std::isfinite(c.image_mean[i]), where, ": field \"image_mean\" must hold finite numbers");
    check(std::isfinite(c.image_std[i]) && c.image_std[i] > 0, where,
          ": field \"image_std\" must hold positive numbers (pixels are divided by it), got ",
          c.image_std[i]);
  }
  if (j.contains("vision")) {
    const json& v = j["vision"];
    const std::string w = where + " (vision)";
    read_field(v, "image_size", c.vision.image_size, w);
    read_field(v, "patch_size", c.vision.patch_size, w);
    read_field(v, "width", c.vision.width, w);
    read_field(v, "layers", c.vision.layers, w);
    read_field(v, "heads", c.vision.heads, w);
    read_field(v, "mlp_ratio", c.vision.mlp_ratio, w);
    read_field(v, "resnet_layers", c.vision.resnet_layers, w);
  }
  if (j.contains("text")) read_text_config(j["text"], c.text, where + " (text)");
  auto positive = [&](int64_t value, const char* field) {
    check(value > 0, where, ": field \"", field, "\" must be positive, got ", value);
  };
  positive(c.embed_dim, "embed_dim");
  positive(c.vision.image_size, "vision.image_size");
  positive(c.vision.patch_size, "vision.patch_size");
  positive(c.vision.width, "vision.width");
  positive(c.vision.heads, "vision.heads");
  if (c.vision.resnet_layers.empty()) {
    check(c.vision.image_size % c.vision.patch_size == 0, where, ": vision.image_size ", c.vision.image_size,
          " is not a multiple of vision.patch_size ", c.vision.patch_size);
    check(c.vision.width % c.vision.heads == 0, where, ": vision.width is not divisible by vision.heads");
  } else {
    check(c.vision.image_size % 32 == 0, where, ": vision.image_size ", c.vision.image_size,
          " must be a multiple of 32 for a ResNet image tower");
    check(c.vision.width % 2 == 0 && (c.vision.width * 32) % c.vision.heads == 0, where,
          ": vision.width must be even and 32 * vision.width divisible by vision.heads");
    for (int64_t n : c.vision.resnet_layers)
      check(n > 0, where, ": vision.resnet_layers must hold positive block counts");
  }
  return c;
}

double least_parameters(const TextConfig& t) {
  const double w = static_cast<double>(t.width);
  return static_cast<double>(t.layers) * (4 + 2 * t.mlp_ratio) * w * w +
         static_cast<double>(t.vocab_size) * w;
}

double least_parameters(const ClipConfig& c) {
  const double w = static_cast<double>(c.vision.width);
  const double vision = c.vision.resnet_layers.empty()
                            ? static_cast<double>(c.vision.layers) * (4 + 2 * c.vision.mlp_ratio) * w * w
                            : 4.5 * w * w;  // a ResNet's stem alone: a 3x3 convolution from w / 2 to w
  return vision + least_parameters(c.text);
}

namespace {

ClipConfig vit_preset(const char* name, int64_t embed, int64_t image, int64_t patch, int64_t vwidth,
                      int64_t vlayers, int64_t twidth, int64_t tlayers) {
  ClipConfig c;
  c.preset = name;
  c.embed_dim = embed;
  c.activation = Activation::quick_gelu;  // the OpenAI weights' activation
  c.vision = {
      .image_size = image, .patch_size = patch, .width = vwidth, .layers = vlayers, .heads = vwidth / 64};
  c.text = {
      .context_length = 77, .vocab_size = 49408, .width = twidth, .layers = tlayers, .heads = twidth / 64};
  return c;
}

ClipConfig resnet_preset(const char* name, int64_t embed, int64_t image, int64_t width,
                         std::vector<int64_t> layers, int64_t twidth) {
  ClipConfig c = vit_preset(name, embed, image, 32, 64, 1, twidth, 12);
  c.vision = {
      .image_size = image, .width = width, .heads = width * 32 / 64, .resnet_layers = std::move(layers)};
  return c;
}

std::vector<ClipConfig> presets() {
  // The tiny models train on a CPU in minutes; vocab_size is set from the tokenizer when training starts.
  ClipConfig tiny;
  tiny.preset = "clip-tiny";
  tiny.embed_dim = 128;
  tiny.vision = {.image_size = 64, .width = 16, .heads = 8, .resnet_layers = {1, 1, 1, 1}};
  tiny.text = {
      .context_length = 32, .vocab_size = 1024, .width = 128, .layers = 3, .heads = 4, .eot_token_id = 1023};
  ClipConfig tiny_vit = tiny;
  tiny_vit.preset = "clip-tiny-vit";
  tiny_vit.vision = {.image_size = 64, .patch_size = 8, .width = 128, .layers = 4, .heads = 4};
  return {
      tiny,
      tiny_vit,
      vit_preset("clip-vit-b-32", 512, 224, 32, 768, 12, 512, 12),
      vit_preset("clip-vit-b-16", 512, 224, 16, 768, 12, 512, 12),
      vit_preset("clip-vit-l-14", 768, 224, 14, 1024, 24, 768, 12),
      vit_preset("clip-vit-l-14-336", 768, 336, 14, 1024, 24, 768, 12),
      resnet_preset("clip-rn50", 1024, 224, 64, {3, 4, 6, 3}, 512),
      resnet_preset("clip-rn101", 512, 224, 64, {3, 4, 23, 3}, 512),
  };
}

}  // namespace

ClipConfig clip_preset(const std::string& name) {
  for (const auto& c : presets())
    if (c.preset == name) return c;
  throw Error(str_cat("unknown preset \"", name, "\" (known: ", join(clip_preset_names()),
                      "; `mmlearn models` lists them)"));
}

std::vector<std::string> clip_preset_names() {
  std::vector<std::string> names;
  for (const auto& c : presets()) names.push_back(c.preset);
  return names;
}

ClipImpl::ClipImpl(const ClipConfig& c) : config(c) {
  if (c.vision.resnet_layers.empty())
    vit = register_module("visual", VisionTransformer(c.vision, c.embed_dim, c.activation, c.layer_norm_eps));
  else
    resnet = register_module("visual", ModifiedResNet(c.vision, c.embed_dim));
  text = register_module("text", TextTransformer(c.text, c.embed_dim, c.activation, c.layer_norm_eps));
  logit_scale = register_parameter("logit_scale", torch::full({}, c.logit_scale_init));
}

torch::Tensor ClipImpl::encode_image(const torch::Tensor& pixels) {
  // In fp32 even under bf16 autocast: the similarities built from these need the precision.
  auto pooled = vit ? vit(pixels).pooled : resnet(pixels).pooled;
  return torch::nn::functional::normalize(full_precision(pooled),
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

torch::Tensor ClipImpl::encode_text(const torch::Tensor& ids) {
  return torch::nn::functional::normalize(full_precision(text(ids).pooled),
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

torch::Tensor normalize_pixels(const ClipConfig& config, const torch::Tensor& images_u8) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(images_u8.device());
  auto mean = torch::tensor(std::vector<double>(config.image_mean.begin(), config.image_mean.end()), opts)
                  .view({1, 3, 1, 1});
  auto std = torch::tensor(std::vector<double>(config.image_std.begin(), config.image_std.end()), opts)
                 .view({1, 3, 1, 1});
  return (images_u8.to(torch::kFloat32) / 255.0 - mean) / std;
}

torch::Tensor ClipImpl::normalize_pixels(const torch::Tensor& images_u8) const {
  const auto pixels = mmlearn::normalize_pixels(config, images_u8);
  return pixels.to(logit_scale.scalar_type());  // fp64 when training in fp64
}

}  // namespace mmlearn
