#include "mmlearn/models/whisper_import.h"

#include <map>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/torch_file.h"
#include "mmlearn/models/weight_files.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<std::string> split(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = key.find('.', start)) != std::string::npos; start = dot + 1)
    parts.push_back(key.substr(start, dot - start));
  parts.push_back(key.substr(start));
  return parts;
}

// Hugging Face's name of one part -> OpenAI's.
const std::map<std::string, std::string>& hf_part_names() {
  static const std::map<std::string, std::string> names = {{"layers", "blocks"},
                                                           {"self_attn", "attn"},
                                                           {"encoder_attn", "cross_attn"},
                                                           {"q_proj", "query"},
                                                           {"k_proj", "key"},
                                                           {"v_proj", "value"},
                                                           {"out_proj", "out"},
                                                           {"self_attn_layer_norm", "attn_ln"},
                                                           {"encoder_attn_layer_norm", "cross_attn_ln"},
                                                           {"final_layer_norm", "mlp_ln"},
                                                           {"fc1", "mlp.0"},
                                                           {"fc2", "mlp.2"}};
  return names;
}

int64_t json_int(const json& j, const char* key, const std::string& where) {
  check(j.contains(key) && j[key].is_number_integer() && j[key].get<int64_t>() > 0, where, ": field \"", key,
        "\" must be a positive integer");
  return j[key].get<int64_t>();
}

text::WhisperTokenizer load_tokenizer(const fs::path& path, int64_t n_vocab, bool given) {
  try {
    return text::WhisperTokenizer::load(path, n_vocab);
  } catch (const Error& e) {
    if (given) throw;
    throw Error(str_cat(e.what(), " (OpenAI's checkpoints carry no tokenizer: pass --tokenizer with ",
                        n_vocab >= 51865 ? "multilingual" : "gpt2", ".tiktoken or a tokenizer directory)"));
  }
}

WhisperBundle open_openai(const fs::path& file, const WhisperOpenOptions& o) {
  check(
      file.extension() != ".safetensors", file.string(),
      ": not an OpenAI Whisper checkpoint (a lone .safetensors file says nothing of the model's dimensions; ",
      "open the Hugging Face directory that holds it with its config.json)");
  TorchFile checkpoint(file);
  const PickleValue* dims = checkpoint.root().find("dims");
  const PickleValue* state = checkpoint.root().find("model_state_dict");
  check(dims && dims->get<PickleDict>() && state, file.string(),
        ": not an OpenAI Whisper checkpoint (expected a dict with \"dims\" and \"model_state_dict\"); a ",
        "Hugging Face model is a directory with config.json");
  json dims_json = json::object();
  for (const auto& [key, value] : dims->get<PickleDict>()->items)
    if (key.get<std::string>() && value.get<int64_t>())
      dims_json[*key.get<std::string>()] = *value.get<int64_t>();
  const WhisperConfig config = whisper_config_from_json(dims_json, file.string() + ": dims");
  TensorMap weights;
  for (auto& [name, t] : read_state_dict(checkpoint)) weights[name] = std::move(t);
  const fs::path tokenizer = o.tokenizer.empty() ? file.parent_path() : o.tokenizer;
  return make_whisper(config, load_tokenizer(tokenizer, config.n_vocab, !o.tokenizer.empty()),
                      std::move(weights), file.string());
}

}  // namespace

WhisperConfig whisper_config_from_hf(const json& j, const std::string& where) {
  check(string_value(j, "model_type") == "whisper", where, ": model_type is not \"whisper\"");
  WhisperConfig c;
  c.preset = "custom";
  c.n_mels = json_int(j, "num_mel_bins", where);
  c.n_audio_ctx = json_int(j, "max_source_positions", where);
  c.n_audio_state = c.n_text_state = json_int(j, "d_model", where);
  c.n_audio_head = json_int(j, "encoder_attention_heads", where);
  c.n_audio_layer = json_int(j, "encoder_layers", where);
  c.n_vocab = json_int(j, "vocab_size", where);
  c.n_text_ctx = json_int(j, "max_target_positions", where);
  c.n_text_head = json_int(j, "decoder_attention_heads", where);
  c.n_text_layer = json_int(j, "decoder_layers", where);
  for (const char* ffn : {"encoder_ffn_dim", "decoder_ffn_dim"})
    check(!j.contains(ffn) || j[ffn] == 4 * c.n_audio_state, where, ": ", ffn, " ",
          j.value(ffn, json()).dump(), " is not 4 x d_model; only Whisper's published shape is supported");
  check(j.value("activation_function", "gelu") == "gelu", where, ": activation_function must be \"gelu\"");
  check(!j.value("scale_embedding", false), where, ": scale_embedding is not Whisper's");
  return whisper_config_from_json(to_json(c), where);
}

TensorMap whisper_from_hf_state_dict(const TensorMap& state, const std::string& where) {
  TensorMap out;
  for (const auto& [key, tensor] : state) {
    if (key == "proj_out.weight") {  // the output projection is tied to the token embedding
      auto embed = state.find("model.decoder.embed_tokens.weight");
      check(
          embed != state.end() && torch::equal(embed->second, tensor), where,
          ": proj_out.weight differs from the token embedding; untied output projections are not supported");
      continue;
    }
    auto parts = split(key);
    check(parts.size() >= 3 && parts[0] == "model" && (parts[1] == "encoder" || parts[1] == "decoder"), where,
          ": unexpected tensor \"", key, "\" for a Whisper model");
    std::vector<std::string> mapped(parts.begin() + 1, parts.end());
    if (mapped[1] == "embed_positions") {
      mapped = {mapped[0], "positional_embedding"};
    } else if (mapped[1] == "embed_tokens") {
      mapped[1] = "token_embedding";
    } else if (mapped[1] == "layer_norm") {
      mapped[1] = mapped[0] == "encoder" ? "ln_post" : "ln";
    } else {
      for (auto& p : mapped)
        if (auto it = hf_part_names().find(p); it != hf_part_names().end()) p = it->second;
    }
    out[join(mapped, ".")] = tensor;
  }
  return out;
}

WhisperBundle make_whisper(const WhisperConfig& config, text::WhisperTokenizer tokenizer, TensorMap weights,
                           const std::string& where, std::optional<bool> multilingual) {
  check(tokenizer.vocab_size() == config.n_vocab, where, ": the tokenizer has ", tokenizer.vocab_size(),
        " tokens but the model ", config.n_vocab, " (",
        config.n_vocab >= 51865 ? "multilingual models use multilingual.tiktoken"
                                : "English-only models use gpt2.tiktoken",
        ")");
  weights.erase("alignment_heads");  // cross-attention heads for word timings, a non-persistent buffer
  check_config_fits_weights(least_parameters(config), weights, "the model's dimensions", where);
  Whisper model(config);
  load_parameters(*model, weights, where);
  model->eval();
  const bool is_multilingual = multilingual.value_or(config.n_vocab >= 51865);
  check(!is_multilingual || !tokenizer.languages().empty(), where,
        ": a multilingual model needs language tokens");
  return {model, std::move(tokenizer), is_multilingual};
}

WhisperBundle open_whisper(const fs::path& path, const WhisperOpenOptions& options) {
  check(fs::exists(path), "model ", path.string(), " does not exist");
  if (!fs::is_directory(path)) return open_openai(path, options);
  const fs::path config_path = path / "config.json";
  if (!fs::exists(config_path)) {
    for (const auto& entry : fs::directory_iterator(path))
      if (entry.path().extension() == ".pt") return open_openai(entry.path(), options);
    throw Error(
        str_cat(path.string(), ": not a Whisper model directory (expected config.json, or OpenAI's .pt)"));
  }
  const json config = read_json_file(config_path);
  const fs::path tokenizer = options.tokenizer.empty() ? path : options.tokenizer;
  if (string_value(config, "architecture") == "whisper") {
    check(config.contains("dims"), config_path.string(), ": missing \"dims\"");
    const WhisperConfig c = whisper_config_from_json(config["dims"], config_path.string() + ": dims");
    // The tokenizer file holds the base vocabulary; the language count and multilinguality are in config.json
    // (models trained here have their own vocabulary, so OpenAI's rule from n_vocab does not apply).
    const std::string where = config_path.string();
    int languages = -1;
    bool multilingual = c.n_vocab >= 51865, timestamps = true, suppress_non_speech = true;
    read_field(config, "num_languages", languages, where);
    read_field(config, "multilingual", multilingual, where);
    read_field(config, "timestamps", timestamps, where);
    read_field(config, "suppress_non_speech", suppress_non_speech, where);
    auto tok = languages >= 0 && options.tokenizer.empty()
                   ? text::WhisperTokenizer::from_tiktoken(path / "tokenizer.tiktoken", languages)
                   : load_tokenizer(tokenizer, c.n_vocab, true);
    WhisperBundle bundle = make_whisper(c, std::move(tok), load_safetensors(path / "model.safetensors"),
                                        path.string(), multilingual);
    bundle.suppress_non_speech = suppress_non_speech;
    bundle.timestamps = timestamps;
    return bundle;
  }
  check(string_value(config, "model_type") == "whisper", config_path.string(),
        ": not a Whisper model (model_type ", config.value("model_type", json("none")).dump(), ")");
  const WhisperConfig c = whisper_config_from_hf(config, config_path.string());
  return make_whisper(c, load_tokenizer(tokenizer, c.n_vocab, true),
                      whisper_from_hf_state_dict(read_hf_weights(path), path.string()), path.string());
}

void save_whisper(const fs::path& dir, const WhisperBundle& w) {
  fs::create_directories(dir);
  w.tokenizer.save_tiktoken(dir / "tokenizer.tiktoken");
  save_safetensors(dir / "model.safetensors", parameter_map(*w.model), {{"format", "pt"}});
  write_file_atomic(dir / "config.json", json{{"architecture", "whisper"},
                                              {"dims", to_json(w.model->config)},
                                              {"num_languages", w.tokenizer.languages().size()},
                                              {"multilingual", w.multilingual},
                                              {"suppress_non_speech", w.suppress_non_speech},
                                              {"timestamps", w.timestamps}}
                                                 .dump(2) +
                                             "\n");
}

}  // namespace mmlearn
