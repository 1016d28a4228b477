// Opening Hugging Face BLIP directories (models/blip.h): config.json, the weights renamed key by key into
// mmlearn's module tree, BlipImageProcessor's preprocessing and BERT's tokenizer.
#include <tuple>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/models/blip.h"
#include "mmlearn/models/weight_files.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* architecture_of(const std::string& task) {
  return task == "vqa" ? "BlipForQuestionAnswering" : "BlipForConditionalGeneration";
}

// Hugging Face names -> mmlearn's, applied in order to every key (prefixes first, then names inside a layer).
const std::vector<std::pair<std::string, std::string>> kRenames = {
    {"vision_model.embeddings.patch_embedding.", "vision.patch_embed."},
    {"vision_model.embeddings.class_embedding", "vision.class_embedding"},
    {"vision_model.embeddings.position_embedding", "vision.position_embedding"},
    {"vision_model.encoder.layers.", "vision.transformer.resblocks."},
    {"vision_model.post_layernorm.", "vision.ln_post."},
    {".self_attn.qkv.weight", ".attn.in_proj_weight"},
    {".self_attn.qkv.bias", ".attn.in_proj_bias"},
    {".self_attn.projection.", ".attn.out_proj."},
    {".layer_norm1.", ".ln_1."},
    {".layer_norm2.", ".ln_2."},
    {".mlp.fc1.", ".mlp.c_fc."},
    {".mlp.fc2.", ".mlp.c_proj."},
    {"text_decoder.bert.", "text_decoder."},
    {"text_decoder.cls.predictions.transform.dense.", "text_decoder.head_dense."},
    {"text_decoder.cls.predictions.transform.LayerNorm.", "text_decoder.head_ln."},
    {"text_decoder.cls.predictions.bias", "text_decoder.head_bias"},
    {".embeddings.word_embeddings.", ".word_embeddings."},
    {".embeddings.position_embeddings.", ".position_embeddings."},
    {".embeddings.LayerNorm.", ".ln_embed."},
    {".encoder.layer.", ".layers."},
    {".attention.self.", ".self_attn."},
    {".attention.output.dense.", ".self_attn.out."},
    {".attention.output.LayerNorm.", ".self_attn.ln."},
    {".crossattention.self.", ".cross_attn."},
    {".crossattention.output.dense.", ".cross_attn.out."},
    {".crossattention.output.LayerNorm.", ".cross_attn.ln."},
    {".intermediate.dense.", ".mlp_in."},
    {".output.dense.", ".mlp_out."},
    {".output.LayerNorm.", ".ln_mlp."},
};

// A positive integer field of a config section, at most `most` (bounds keep a hostile config from asking
// for absurd allocations before the weights are checked).
int64_t positive(const json& section, const std::string& name, const char* key, int64_t fallback,
                 int64_t most, const std::string& where) {
  if (!section.contains(key) || section[key].is_null()) return fallback;
  const json& v = section[key];
  check(v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= most, where, ": field ", name,
        key, " must be an integer in [1, ", most, "] (got ", v.dump(), ")");
  return v.get<int64_t>();
}

double epsilon(const json& section, const std::string& name, double fallback, const std::string& where) {
  if (!section.contains("layer_norm_eps") || section["layer_norm_eps"].is_null()) return fallback;
  const json& v = section["layer_norm_eps"];
  check(v.is_number() && v.get<double>() > 0 && v.get<double>() < 1, where, ": field ", name,
        "layer_norm_eps must be a number in (0, 1) (got ", v.dump(), ")");
  return v.get<double>();
}

void check_activation(const json& section, const std::string& name, const std::string& where) {
  if (!section.contains("hidden_act")) return;
  check(section["hidden_act"] == "gelu", where, ": field ", name, "hidden_act is ",
        section["hidden_act"].dump(), "; BLIP as mmlearn runs it uses \"gelu\"");
}

vision::ImagePreprocess blip_preprocess(const fs::path& dir, int64_t image_size) {
  const fs::path path = dir / "preprocessor_config.json";
  vision::ImagePreprocess p;  // BlipImageProcessor's defaults
  p.family = vision::ImagePreprocess::Family::hf;
  p.resize_shortest = 0;
  p.resize_width = p.resize_height = static_cast<int>(image_size);
  p.crop_width = p.crop_height = 0;
  if (fs::exists(path)) p = vision::read_hf_preprocessor_config(path);
  check(p.crop_width == 0 && p.resize_shortest == 0 && p.resize_width == image_size &&
            p.resize_height == image_size,
        path.string(), ": BLIP resizes to the model's image_size ", image_size, " x ", image_size,
        " without a crop; this file asks for something else");
  return p;
}

}  // namespace

BlipConfig blip_config_from_hf(const json& j, const std::string& where) {
  check(j.is_object(), where, ": expected a JSON object (a model's config.json)");
  check(string_value(j, "model_type") == "blip", where, ": model_type ",
        j.contains("model_type") ? j["model_type"].dump() : "(missing)",
        " is not a BLIP model (expected \"blip\")");
  BlipConfig c;
  const json& archs = j.contains("architectures") ? j["architectures"] : json();
  check(archs.is_array() && archs.size() == 1 && archs[0].is_string(), where,
        ": field architectures must name one of BlipForConditionalGeneration, BlipForQuestionAnswering");
  const std::string arch = archs[0].get<std::string>();
  check(arch == architecture_of("caption") || arch == architecture_of("vqa"), where, ": architectures ", arch,
        " is not one mmlearn runs (BlipForConditionalGeneration for captions, BlipForQuestionAnswering for "
        "answers)");
  c.task = arch == architecture_of("vqa") ? "vqa" : "caption";

  const json none = json::object();
  for (const char* section : {"text_config", "vision_config"})
    check(!j.contains(section) || j[section].is_object(), where, ": field ", section, " must be an object");
  const json& t = j.contains("text_config") ? j["text_config"] : none;
  const json& v = j.contains("vision_config") ? j["vision_config"] : none;
  // BlipVisionConfig's and BlipTextConfig's defaults for fields a config leaves out.
  const std::string vs = "vision_config.", ts = "text_config.";
  auto& cv = c.vision;
  cv.width = positive(v, vs, "hidden_size", 768, 16384, where);
  cv.intermediate = positive(v, vs, "intermediate_size", 3072, 65536, where);
  cv.layers = positive(v, vs, "num_hidden_layers", 12, 256, where);
  cv.heads = positive(v, vs, "num_attention_heads", 12, 256, where);
  cv.image_size = positive(v, vs, "image_size", 384, 4096, where);
  cv.patch_size = positive(v, vs, "patch_size", 16, 4096, where);
  cv.layer_norm_eps = epsilon(v, vs, 1e-5, where);
  check_activation(v, vs, where);
  check(cv.width % cv.heads == 0, where, ": vision_config.hidden_size ", cv.width,
        " is not divisible by num_attention_heads ", cv.heads);
  check(cv.image_size % cv.patch_size == 0, where, ": vision_config.image_size ", cv.image_size,
        " is not a multiple of patch_size ", cv.patch_size);
  auto& ct = c.text;
  ct.vocab_size = positive(t, ts, "vocab_size", 30524, 1 << 22, where);
  ct.width = positive(t, ts, "hidden_size", 768, 16384, where);
  ct.intermediate = positive(t, ts, "intermediate_size", 3072, 65536, where);
  ct.layers = positive(t, ts, "num_hidden_layers", 12, 256, where);
  ct.heads = positive(t, ts, "num_attention_heads", 8, 256, where);
  ct.max_positions = positive(t, ts, "max_position_embeddings", 512, 1 << 16, where);
  ct.encoder_width = positive(t, ts, "encoder_hidden_size", cv.width, 16384, where);
  ct.layer_norm_eps = epsilon(t, ts, 1e-12, where);
  check_activation(t, ts, where);
  check(ct.width % ct.heads == 0, where, ": text_config.hidden_size ", ct.width,
        " is not divisible by num_attention_heads ", ct.heads);
  check(ct.max_positions >= 2, where, ": text_config.max_position_embeddings must be at least 2");
  for (auto [key, id, fallback] : {std::tuple{"bos_token_id", &ct.bos_token_id, int64_t{30522}},
                                   std::tuple{"sep_token_id", &ct.sep_token_id, int64_t{102}},
                                   std::tuple{"pad_token_id", &ct.pad_token_id, int64_t{0}}}) {
    *id = fallback;
    if (t.contains(key) && !t[key].is_null()) {
      check(t[key].is_number_integer(), where, ": field text_config.", key, " must be an integer");
      *id = t[key].get<int64_t>();
    }
    check(*id >= 0 && *id < ct.vocab_size, where, ": text_config.", key, " ", *id,
          " is outside the vocabulary of ", ct.vocab_size);
  }
  // The captioner's decoder reads the image tokens, the answerer's decoder the encoded question.
  check(c.task == "vqa" || ct.encoder_width == cv.width, where, ": text_config.encoder_hidden_size ",
        ct.encoder_width, " differs from vision_config.hidden_size ", cv.width);
  return c;
}

bool holds_blip(const fs::path& dir, const std::string& task) {
  if (!fs::is_directory(dir) || !fs::exists(dir / "config.json")) return false;
  try {
    const json j = read_json_file(dir / "config.json");
    if (string_value(j, "model_type") != "blip") return false;
    // Any other architecture goes to the captioner, whose opening says what is wrong with it.
    const json archs = j.value("architectures", json::array());
    const bool vqa = archs.is_array() && !archs.empty() && archs[0] == architecture_of("vqa");
    return vqa == (task == "vqa");
  } catch (const Error&) {
    return false;
  }
}

TensorMap from_hf_blip_state_dict(const TensorMap& state, const BlipConfig& c, const std::string& where) {
  TensorMap out;
  for (const auto& [hf_key, t] : state) {
    // Buffers older versions saved (arange), and the LM head's output matrix and bias, tied to the word
    // embeddings and to cls.predictions.bias (save_pretrained leaves them out; torch.save keeps them).
    if (hf_key.ends_with(".position_ids") || hf_key == "text_decoder.cls.predictions.decoder.weight" ||
        hf_key == "text_decoder.cls.predictions.decoder.bias")
      continue;
    check(hf_key.starts_with("vision_model.") || hf_key.starts_with("text_decoder.") ||
              (c.task == "vqa" && hf_key.starts_with("text_encoder.")),
          where, ": unexpected tensor \"", hf_key, "\" (not part of ", architecture_of(c.task), ")");
    std::string key = hf_key;
    for (const auto& [from, to] : kRenames)
      if (auto at = key.find(from); at != std::string::npos) key.replace(at, from.size(), to);
    // HF keeps the class token [1, 1, D] and the positions [1, N, D] batched.
    if (key == "vision.class_embedding" && t.dim() == 3 && t.size(0) == 1 && t.size(1) == 1)
      out[key] = t.reshape({-1});
    else if (key == "vision.position_embedding" && t.dim() == 3 && t.size(0) == 1)
      out[key] = t.squeeze(0);
    else
      out[key] = t;
  }
  // The bias tied to cls.predictions.bias, where only it was saved.
  if (!out.count("text_decoder.head_bias") && state.count("text_decoder.cls.predictions.decoder.bias"))
    out["text_decoder.head_bias"] = state.at("text_decoder.cls.predictions.decoder.bias");
  return out;
}

BlipBundle open_blip(const fs::path& dir) {
  const fs::path config_path = dir / "config.json";
  check(fs::exists(config_path), dir.string(),
        ": no config.json (a Hugging Face BLIP directory holds config.json, "
        "model.safetensors, preprocessor_config.json and vocab.txt)");
  const BlipConfig config = blip_config_from_hf(read_json_file(config_path), config_path.string());
  BlipBundle b{.model = nullptr,
               .tokenizer = text::WordPieceTokenizer::load(dir),
               .preprocess = blip_preprocess(dir, config.vision.image_size)};
  check(b.tokenizer.vocab_size() <= config.text.vocab_size, dir.string(), ": the tokenizer has ",
        b.tokenizer.vocab_size(), " tokens, more than the model's vocab_size ", config.text.vocab_size);
  const TensorMap weights = from_hf_blip_state_dict(read_hf_weights(dir), config, dir.string());
  const double v = double(config.vision.width), t = double(config.text.width);
  check_config_fits_weights(double(config.vision.layers) * 4 * v * v +
                                double(config.text.layers) * 6 * t * t + double(config.text.vocab_size) * t,
                            weights, config_path.string(), dir.string());
  b.model = Blip(config);
  load_parameters(*b.model, weights, dir.string());
  b.model->eval();
  return b;
}

}  // namespace mmlearn
