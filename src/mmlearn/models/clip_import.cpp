#include "mmlearn/models/clip_import.h"

#include <cmath>
#include <map>
#include <set>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/torch_file.h"
#include "mmlearn/models/weight_files.h"
#include "mmlearn/text/tokenizer_files.h"
#include "mmlearn/vision/clip_preprocess.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const torch::Tensor& need(const TensorMap& state, const std::string& key, const std::string& where) {
  auto it = state.find(key);
  check(it != state.end(), where, ": no tensor \"", key,
        "\" (expected a CLIP state dict with OpenAI's key names, e.g. visual.conv1.weight)");
  return it->second;
}

// Distinct block indices N among keys "<prefix>N.<suffix>".
int64_t count_blocks(const TensorMap& state, const std::string& prefix, const std::string& suffix) {
  std::set<std::string> blocks;
  for (const auto& [key, t] : state)
    if (key.starts_with(prefix) && key.ends_with(suffix)) {
      const std::string rest = key.substr(prefix.size());
      blocks.insert(rest.substr(0, rest.find('.')));
    }
  return static_cast<int64_t>(blocks.size());
}

int64_t heads_for(int64_t width, const char* tower, const std::string& where) {
  check(width % 64 == 0, where, ": ", tower, " width ", width,
        " is not a multiple of 64, so the number of attention heads cannot be inferred (OpenAI's rule is "
        "width / 64); convert the checkpoint to a model directory whose config.json states it");
  return width / 64;
}

int64_t square_side(int64_t tokens, const std::string& key, const std::string& where) {
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(tokens - 1))));
  check(side * side + 1 == tokens, where, ": ", key, " has ", tokens,
        " rows, not a square grid plus one (the checkpoint is not a CLIP image tower)");
  return side;
}

}  // namespace

ClipConfig infer_openai_clip_config(const TensorMap& s, const std::string& where) {
  ClipConfig c;
  c.preset = "custom";
  c.activation = Activation::quick_gelu;
  c.image_preprocess = "openai";
  if (s.count("visual.proj")) {
    const auto& conv = need(s, "visual.conv1.weight", where);
    const int64_t width = conv.size(0), patch = conv.size(-1);
    const int64_t grid = square_side(need(s, "visual.positional_embedding", where).size(0),
                                     "visual.positional_embedding", where);
    c.vision = {
        .image_size = patch * grid,
        .patch_size = patch,
        .width = width,
        .layers = count_blocks(s, "visual.transformer.resblocks.", ".attn.in_proj_weight"),
        .heads = heads_for(width, "vision", where),
        .mlp_ratio =
            double(need(s, "visual.transformer.resblocks.0.mlp.c_fc.weight", where).size(0)) / double(width)};
  } else {
    const int64_t width = need(s, "visual.layer1.0.conv1.weight", where).size(0);
    std::vector<int64_t> layers;
    for (int stage = 1; s.count(str_cat("visual.layer", stage, ".0.conv1.weight")); ++stage)
      layers.push_back(count_blocks(s, str_cat("visual.layer", stage, "."), ".conv1.weight"));
    const int64_t side = square_side(need(s, "visual.attnpool.positional_embedding", where).size(0),
                                     "visual.attnpool.positional_embedding", where);
    c.vision = {.image_size = side << (layers.size() + 1),
                .width = width,
                .heads = heads_for(width * 32, "vision", where),
                .resnet_layers = layers};
  }
  const auto& token_embedding = need(s, "token_embedding.weight", where);
  const int64_t text_width = need(s, "ln_final.weight", where).size(0);
  c.embed_dim = need(s, "text_projection", where).size(1);
  c.text = {.context_length = need(s, "positional_embedding", where).size(0),
            .vocab_size = token_embedding.size(0),
            .width = text_width,
            .layers = count_blocks(s, "transformer.resblocks.", ".attn.in_proj_weight"),
            .heads = heads_for(text_width, "text", where),
            .mlp_ratio = double(need(s, "transformer.resblocks.0.mlp.c_fc.weight", where).size(0)) /
                         double(text_width),
            .eot_token_id = token_embedding.size(0) - 1};  // CLIP's <|endoftext|> is the last id
  return c;
}

TensorMap from_openai_state_dict(TensorMap state) {
  TensorMap out;
  for (auto& [key, t] : state) {
    // build_model drops these: they repeat what the shapes already say.
    if (key == "input_resolution" || key == "context_length" || key == "vocab_size") continue;
    const bool shared = key.starts_with("visual.") || key == "logit_scale";
    out[shared ? key : "text." + key] = std::move(t);
  }
  return out;
}

ClipConfig clip_config_from_hf(const json& j, const std::string& where) {
  check(j.is_object(), where, ": config must be a JSON object");
  if (j.contains("model_type"))
    check(j["model_type"] == "clip", where, ": model_type ", j["model_type"].dump(),
          " is not a CLIP model (expected \"clip\")");
  const json none = json::object();
  const json& t = j.contains("text_config") && j["text_config"].is_object() ? j["text_config"] : none;
  const json& v = j.contains("vision_config") && j["vision_config"].is_object() ? j["vision_config"] : none;
  // CLIPTextConfig / CLIPVisionConfig defaults for fields a config leaves out.
  auto get = [&](const json& o, const char* section, const char* key, auto fallback) {
    using T = decltype(fallback);
    if (!o.contains(key) || o[key].is_null()) return fallback;
    try {
      return o[key].get<T>();
    } catch (const json::exception&) {
      throw Error(str_cat(where, ": field ", section, key, " has the wrong type (", o[key].dump(), ")"));
    }
  };
  const std::string text_act = get(t, "text_config.", "hidden_act", std::string("quick_gelu"));
  const std::string vision_act = get(v, "vision_config.", "hidden_act", std::string("quick_gelu"));
  check(text_act == vision_act, where, ": the towers use different activations (", text_act, ", ", vision_act,
        "); mmlearn's CLIP has one");
  const double text_eps = get(t, "text_config.", "layer_norm_eps", 1e-5);
  check(text_eps == get(v, "vision_config.", "layer_norm_eps", 1e-5), where,
        ": the towers use different layer_norm_eps; mmlearn's CLIP has one");

  ClipConfig c;
  c.preset = "custom";
  c.image_preprocess = "hf";
  try {
    c.activation = parse_activation(text_act);
  } catch (const Error& e) {
    throw Error(str_cat(where, ": field text_config.hidden_act: ", e.what()));
  }
  c.layer_norm_eps = text_eps;
  c.embed_dim = get(j, "", "projection_dim", int64_t{512});
  const int64_t vwidth = get(v, "vision_config.", "hidden_size", int64_t{768});
  c.vision = {
      .image_size = get(v, "vision_config.", "image_size", int64_t{224}),
      .patch_size = get(v, "vision_config.", "patch_size", int64_t{32}),
      .width = vwidth,
      .layers = get(v, "vision_config.", "num_hidden_layers", int64_t{12}),
      .heads = get(v, "vision_config.", "num_attention_heads", int64_t{12}),
      .mlp_ratio = double(get(v, "vision_config.", "intermediate_size", int64_t{3072})) / double(vwidth)};
  const int64_t twidth = get(t, "text_config.", "hidden_size", int64_t{512});
  const int64_t vocab = get(t, "text_config.", "vocab_size", int64_t{49408});
  // eos_token_id 2 marks the first CLIP conversions, which pool at argmax(ids): CLIP's <|endoftext|>, the
  // largest id.
  const int64_t eos = get(t, "text_config.", "eos_token_id", int64_t{49407});
  c.text = {.context_length = get(t, "text_config.", "max_position_embeddings", int64_t{77}),
            .vocab_size = vocab,
            .width = twidth,
            .layers = get(t, "text_config.", "num_hidden_layers", int64_t{12}),
            .heads = get(t, "text_config.", "num_attention_heads", int64_t{8}),
            .mlp_ratio = double(get(t, "text_config.", "intermediate_size", int64_t{2048})) / double(twidth),
            .eot_token_id = eos == 2 ? vocab - 1 : eos};
  return clip_config_from_json(to_json(c), where);  // the same validation as mmlearn's own configs
}

// Hugging Face names -> mmlearn (OpenAI) names, applied in order; the reverse for export.
const std::vector<std::pair<std::string, std::string>> kHfRenames = {
    {"text_model.embeddings.token_embedding.weight", "text.token_embedding.weight"},
    {"text_model.embeddings.position_embedding.weight", "text.positional_embedding"},
    {"text_model.final_layer_norm.", "text.ln_final."},
    {"text_model.encoder.layers.", "text.transformer.resblocks."},
    {"vision_model.embeddings.class_embedding", "visual.class_embedding"},
    {"vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"},
    {"vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"},
    {"vision_model.pre_layrnorm.", "visual.ln_pre."},  // sic: HF's name
    {"vision_model.post_layernorm.", "visual.ln_post."},
    {"vision_model.encoder.layers.", "visual.transformer.resblocks."},
    {".layer_norm1.", ".ln_1."},
    {".layer_norm2.", ".ln_2."},
    {".mlp.fc1.", ".mlp.c_fc."},
    {".mlp.fc2.", ".mlp.c_proj."},
    {".self_attn.out_proj.", ".attn.out_proj."},
};

TensorMap from_hf_state_dict(const TensorMap& state, const std::string& where) {
  TensorMap out;
  std::map<std::string, std::array<torch::Tensor, 3>> qkv;  // "<block>.attn.in_proj_<weight|bias>" -> q, k, v
  for (const auto& [hf_key, t] : state) {
    if (hf_key.ends_with("position_ids")) continue;  // a buffer older versions saved: arange(n)
    if (hf_key == "text_projection.weight") {
      out["text.text_projection"] = t.t();  // nn.Linear stores [out, in]; OpenAI's matrix is [in, out]
      continue;
    }
    if (hf_key == "visual_projection.weight") {
      out["visual.proj"] = t.t();
      continue;
    }
    std::string key = hf_key;
    for (const auto& [from, to] : kHfRenames)
      if (auto at = key.find(from); at != std::string::npos) key.replace(at, from.size(), to);
    static const std::array<std::string, 3> kParts = {".self_attn.q_proj.", ".self_attn.k_proj.",
                                                      ".self_attn.v_proj."};
    bool fused = false;
    for (size_t p = 0; p < 3 && !fused; ++p)
      if (auto at = key.find(kParts[p]); at != std::string::npos) {
        const std::string fused_key =
            key.substr(0, at) + ".attn.in_proj_" + key.substr(at + kParts[p].size());
        qkv[fused_key][p] = t;
        fused = true;
      }
    if (!fused) out[key] = t;
  }
  for (auto& [key, parts] : qkv) {
    for (const auto& part : parts)
      check(part.defined(), where, ": ", key, " lacks one of q_proj, k_proj, v_proj");
    out[key] = torch::cat({parts[0], parts[1], parts[2]});
  }
  return out;
}

TensorMap to_hf_state_dict(const TensorMap& state) {
  TensorMap out;
  for (const auto& [ours, t] : state) {
    if (ours == "text.text_projection") {
      out["text_projection.weight"] = t.t().contiguous();
      continue;
    }
    if (ours == "visual.proj") {
      out["visual_projection.weight"] = t.t().contiguous();
      continue;
    }
    std::string key = ours;
    for (auto it = kHfRenames.rbegin(); it != kHfRenames.rend(); ++it)
      if (auto at = key.find(it->second); at != std::string::npos)
        key.replace(at, it->second.size(), it->first);
    if (auto at = key.find(".attn.in_proj_"); at != std::string::npos) {
      const std::string block = key.substr(0, at), kind = key.substr(at + 14);  // "weight" or "bias"
      const auto parts = t.chunk(3);
      for (int p = 0; p < 3; ++p)
        out[str_cat(block, ".self_attn.", "qkv"[p], "_proj.", kind)] = parts[size_t(p)].contiguous();
      continue;
    }
    out[key] = t;
  }
  return out;
}

void save_clip_hf(const fs::path& dir, const Clip& model, const text::BpeTokenizer& tokenizer) {
  const ClipConfig& c = model->config;
  check(c.vision.resnet_layers.empty(), dir.string(),
        ": Hugging Face's CLIPModel has no ResNet image tower; convert to an mmlearn directory instead");
  auto tower = [&](int64_t width, int64_t heads, int64_t layers, double mlp_ratio) {
    return json{{"hidden_size", width},
                {"intermediate_size", static_cast<int64_t>(std::llround(width * mlp_ratio))},
                {"num_attention_heads", heads},
                {"num_hidden_layers", layers},
                {"hidden_act", to_string(c.activation)},
                {"layer_norm_eps", c.layer_norm_eps},
                {"projection_dim", c.embed_dim}};
  };
  json text = tower(c.text.width, c.text.heads, c.text.layers, c.text.mlp_ratio);
  text["max_position_embeddings"] = c.text.context_length;
  text["vocab_size"] = c.text.vocab_size;
  text["bos_token_id"] = tokenizer.sot_id();
  text["eos_token_id"] = c.text.eot_token_id;
  text["pad_token_id"] = 1;
  json vision = tower(c.vision.width, c.vision.heads, c.vision.layers, c.vision.mlp_ratio);
  vision["image_size"] = c.vision.image_size;
  vision["patch_size"] = c.vision.patch_size;
  vision["num_channels"] = 3;
  const json config{{"architectures", {"CLIPModel"}},
                    {"model_type", "clip"},
                    {"projection_dim", c.embed_dim},
                    {"logit_scale_init_value", c.logit_scale_init},
                    {"text_config", text},
                    {"vision_config", vision}};
  // CLIPImageProcessor semantics (crop rounding, RGB conversion first): a model from the OpenAI family may
  // see a pixel's shift on odd crops.
  const json preprocessor{
      {"image_processor_type", "CLIPImageProcessor"},
      {"do_convert_rgb", true},
      {"do_resize", true},
      {"size", {{"shortest_edge", c.resize_shortest > 0 ? c.resize_shortest : c.vision.image_size}}},
      {"resample", 3},
      {"do_center_crop", true},
      {"crop_size", {{"height", c.vision.image_size}, {"width", c.vision.image_size}}},
      {"do_rescale", true},
      {"rescale_factor", 1.0 / 255},
      {"do_normalize", true},
      {"image_mean", c.image_mean},
      {"image_std", c.image_std}};
  fs::create_directories(dir);
  write_file_atomic(dir / "config.json", config.dump(2) + "\n");
  write_file_atomic(dir / "preprocessor_config.json", preprocessor.dump(2) + "\n");
  save_safetensors(dir / "model.safetensors", to_hf_state_dict(parameter_map(*model)), {{"format", "pt"}});
  tokenizer.save(dir);
}

namespace {

ClipBundle open_hf(const fs::path& dir, const json& config_json, const ClipImportOptions& o) {
  ClipConfig config = clip_config_from_hf(config_json, (dir / "config.json").string());
  if (o.activation) config.activation = *o.activation;
  const fs::path preprocessor = dir / "preprocessor_config.json";
  if (fs::exists(preprocessor)) {
    const vision::ImagePreprocess p = vision::read_hf_preprocessor_config(preprocessor);
    check(p.crop_width == config.vision.image_size && p.crop_height == config.vision.image_size,
          preprocessor.string(), ": crop_size ", p.crop_width, "x", p.crop_height,
          " differs from the model's image_size ", config.vision.image_size);
    check(p.resize_shortest > 0 && p.filter == vision::Filter::bicubic, preprocessor.string(),
          ": only a bicubic resize of the shortest edge is supported for CLIP models");
    config.resize_shortest = p.resize_shortest;
    config.image_mean = {p.mean[0], p.mean[1], p.mean[2]};
    config.image_std = {p.std_dev[0], p.std_dev[1], p.std_dev[2]};
  }
  const TensorMap tensors = from_hf_state_dict(read_hf_weights(dir), dir.string());
  return make_clip(config, text::load_clip_tokenizer(o.tokenizer.empty() ? dir : o.tokenizer), tensors,
                   dir.string());
}

ClipBundle open_state_dict(const fs::path& file, const ClipImportOptions& o) {
  TensorMap tensors = read_weight_file(file);
  ClipConfig config = infer_openai_clip_config(tensors, file.string());
  // OpenCLIP's hub directories say what the shapes cannot: the activation and the normalisation.
  const fs::path open_clip_config = file.parent_path() / "open_clip_config.json";
  if (fs::exists(open_clip_config)) {
    const json j = read_json_file(open_clip_config);
    if (j.contains("model_cfg") && j["model_cfg"].is_object())
      config.activation =
          j["model_cfg"].value("quick_gelu", false) ? Activation::quick_gelu : Activation::gelu;
    if (j.contains("preprocess_cfg") && j["preprocess_cfg"].is_object()) {
      const json& p = j["preprocess_cfg"];
      try {
        if (p.contains("mean")) config.image_mean = p["mean"].get<std::array<double, 3>>();
        if (p.contains("std")) config.image_std = p["std"].get<std::array<double, 3>>();
      } catch (const json::exception&) {
        throw Error(str_cat(open_clip_config.string(), ": preprocess_cfg.mean/std must hold 3 numbers"));
      }
    }
  }
  if (o.activation) config.activation = *o.activation;
  const fs::path tokenizer = o.tokenizer.empty() ? file.parent_path() : o.tokenizer;
  text::BpeTokenizer tok = [&] {
    try {
      return text::load_clip_tokenizer(tokenizer);
    } catch (const Error& e) {
      throw Error(str_cat(e.what(), o.tokenizer.empty() ? " (a state dict carries no vocabulary: give the "
                                                          "tokenizer files, e.g. --tokenizer "
                                                          "bpe_simple_vocab_16e6.txt.gz)"
                                                        : ""));
    }
  }();
  return make_clip(config, std::move(tok), from_openai_state_dict(std::move(tensors)), file.string());
}

}  // namespace

ClipBundle open_clip(const fs::path& path, const ClipImportOptions& options) {
  check(fs::exists(path), "model ", path.string(), " does not exist");
  if (!fs::is_directory(path)) return open_state_dict(path, options);
  if (fs::exists(path / "config.json")) {
    const json config = read_json_file(path / "config.json");
    if (config.contains("text_config") || config.contains("vision_config"))
      return open_hf(path, config, options);
    return load_clip(path);
  }
  for (const char* name : {"open_clip_model.safetensors", "open_clip_pytorch_model.bin"})
    if (fs::exists(path / name)) return open_state_dict(path / name, options);
  throw Error(str_cat(path.string(),
                      ": not a model directory (expected config.json: an mmlearn or Hugging "
                      "Face CLIP model; or open_clip_model.safetensors)"));
}

}  // namespace mmlearn
