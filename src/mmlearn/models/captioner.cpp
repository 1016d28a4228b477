#include "mmlearn/models/captioner.h"

#include <torch/torch.h>

#include <map>

#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/checkpoint.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/json_fields.h"
#include "mmlearn/core/precision.h"
#include "mmlearn/core/safetensors.h"
#include "mmlearn/models/weight_files.h"
#include "mmlearn/text/clean_up.h"

namespace mmlearn {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kIgnore = -100;  // targets not predicted: the prompt and the padding

torch::Tensor tower_tokens(Clip& clip, const torch::Tensor& pixels) {
  return (clip->vit ? clip->vit->forward(pixels) : clip->resnet->forward(pixels)).tokens;
}

// The tower's tokens [1, N, width] of one blank image: how many it makes and how wide.
torch::Tensor probe_tokens(Clip& clip) {
  torch::NoGradGuard no_grad;
  const int64_t S = clip->config.vision.image_size;
  return tower_tokens(clip, torch::zeros({1, 3, S, S}));
}

// <|startoftext|> and the prompt's tokens.
std::vector<int64_t> prompt_ids(const text::BpeTokenizer& tokenizer, const std::string& prompt) {
  std::vector<int64_t> ids = {tokenizer.sot_id()};
  const auto words = tokenizer.encode(prompt);
  ids.insert(ids.end(), words.begin(), words.end());
  return ids;
}

}  // namespace

json to_json(const CaptionerConfig& c) {
  return {{"task", c.task},
          {"blind", c.blind},
          {"connector", to_json(c.connector)},
          {"decoder", to_json(c.decoder)}};
}

CaptionerConfig captioner_config_from_json(const json& j, const std::string& where) {
  check(j.is_object(), where, ": a captioner's config must be a JSON object");
  check_known_fields(j, {"model_type", "task", "blind", "connector", "decoder"}, where, "");
  CaptionerConfig c;
  read_field(j, "task", c.task, where);
  read_field(j, "blind", c.blind, where);
  check(c.task == "caption" || c.task == "vqa", where, ": \"task\" must be \"caption\" or \"vqa\" (got \"",
        c.task, "\")");
  check(j.contains("connector") && j.contains("decoder"), where,
        ": \"connector\" and \"decoder\" are required");
  c.connector = connector_config_from_json(j["connector"], where);
  c.decoder = text_decoder_config_from_json(j["decoder"], where);
  check(c.connector.width == c.decoder.width, where, ": the connector's width ", c.connector.width,
        " differs from the decoder's ", c.decoder.width);
  check(c.decoder.cross_attention == (c.connector.kind == ConnectorKind::cross_attention), where,
        ": the decoder cross-attends exactly when the connector is cross-attention");
  return c;
}

CaptionerImpl::CaptionerImpl(const CaptionerConfig& c) : config(c) {
  connector = register_module("connector", Connector(c.connector));
  decoder = register_module("decoder", TextDecoder(c.decoder));
}

CaptionerConfig captioner_config(Clip& clip, int64_t vocab_size, const CaptionerOptions& o) {
  check(o.task == "caption" || o.task == "vqa", "captioner task \"", o.task, "\": expected caption or vqa");
  const auto probe = probe_tokens(clip);
  CaptionerConfig c{.task = o.task, .blind = o.blind};
  c.connector = {.kind = o.connector, .encoder_width = probe.size(2), .width = o.width, .heads = o.heads};
  // Room for the prefix and twice the CLIP's text context: a question and its answer, or a caption.
  c.decoder = {
      .vocab_size = vocab_size,
      .context = Connector(c.connector)->prefix_length(probe.size(1)) + 2 * clip->config.text.context_length,
      .width = o.width,
      .layers = o.layers,
      .heads = o.heads,
      .cross_attention = o.connector == ConnectorKind::cross_attention};
  return c;
}

CaptionerBundle make_captioner(ClipBundle clip, const CaptionerOptions& o) {
  const CaptionerConfig c = captioner_config(clip.model, clip.tokenizer.vocab_size(), o);
  return {std::move(clip), Captioner(c)};
}

std::string captioner_model_type(const std::string& task) { return task == "vqa" ? "vqa" : "captioner"; }

CaptionerExample captioner_example(const std::string& task, const data::Manifest& manifest,
                                   const data::Record& record) {
  if (task == "vqa")
    return {data::string_field(manifest, record, "question"), data::string_field(manifest, record, "answer")};
  return {"", data::string_field(manifest, record, "text")};
}

Conditioning condition_on_images(CaptionerBundle& m, const torch::Tensor& pixels) {
  auto tokens = tower_tokens(m.clip.model, pixels);
  if (m.model->config.blind) tokens = torch::zeros_like(tokens);
  return m.model->connector->forward(tokens);
}

Conditioning conditioning_rows(const Conditioning& c, const torch::Tensor& rows) {
  Conditioning out;
  for (auto [from, to] : {std::pair{&c.memory, &out.memory}, std::pair{&c.memory_mask, &out.memory_mask},
                          std::pair{&c.prefix, &out.prefix}})
    if (from->defined()) *to = from->index_select(0, rows.to(from->device()));
  return out;
}

std::pair<torch::Tensor, torch::Tensor> captioner_loss(CaptionerBundle& m, const torch::Tensor& pixels,
                                                       const std::vector<std::string>& prompts,
                                                       const std::vector<std::string>& targets) {
  return captioner_loss(m, condition_on_images(m, pixels), prompts, targets);  // which checks the counts
}

std::pair<torch::Tensor, torch::Tensor> captioner_loss(CaptionerBundle& m, const Conditioning& conditioning,
                                                       const std::vector<std::string>& prompts,
                                                       const std::vector<std::string>& targets) {
  const auto B = static_cast<int64_t>(prompts.size());
  const auto& rows = conditioning.memory.defined() ? conditioning.memory : conditioning.prefix;
  check(B == rows.size(0) && targets.size() == prompts.size(), "captioner: ", rows.size(0), " images, ",
        prompts.size(), " prompts and ", targets.size(), " targets");
  const auto& tok = m.clip.tokenizer;
  std::vector<std::vector<int64_t>> inputs, labels;
  size_t longest = 0;
  for (int64_t b = 0; b < B; ++b) {
    auto sequence = prompt_ids(tok, prompts[static_cast<size_t>(b)]);
    const size_t predicted_from = sequence.size();  // the first target token's position
    const auto words = tok.encode(targets[static_cast<size_t>(b)]);
    sequence.insert(sequence.end(), words.begin(), words.end());
    sequence.push_back(tok.eot_id());
    std::vector<int64_t> in(sequence.begin(), sequence.end() - 1), out(sequence.begin() + 1, sequence.end());
    for (size_t i = 0; i + 1 < predicted_from; ++i) out[i] = kIgnore;
    longest = std::max(longest, in.size());
    inputs.push_back(std::move(in));
    labels.push_back(std::move(out));
  }
  const int64_t prefix = conditioning.prefix.defined() ? conditioning.prefix.size(1) : 0;
  for (int64_t b = 0; b < B; ++b)
    check(prefix + static_cast<int64_t>(inputs[static_cast<size_t>(b)].size()) <=
              m.model->config.decoder.context,
          "captioner: \"", prompts[static_cast<size_t>(b)], "\" + \"", targets[static_cast<size_t>(b)],
          "\" is ", inputs[static_cast<size_t>(b)].size(), " tokens; the model reads ",
          m.model->config.decoder.context - prefix, " at most");
  auto input = torch::full({B, static_cast<int64_t>(longest)}, tok.eot_id(), torch::kInt64);
  auto label = torch::full({B, static_cast<int64_t>(longest)}, kIgnore, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    const auto& in = inputs[static_cast<size_t>(b)];
    input[b].narrow(0, 0, static_cast<int64_t>(in.size())).copy_(torch::tensor(in));
    label[b]
        .narrow(0, 0, static_cast<int64_t>(in.size()))
        .copy_(torch::tensor(labels[static_cast<size_t>(b)]));
  }
  const auto logits = m.model->decoder->forward(input.to(rows.device()), conditioning);
  const auto flat = label.reshape({-1}).to(logits.device());
  const auto sum = torch::nn::functional::cross_entropy(
      full_precision(logits.reshape({-1, logits.size(-1)})), flat,
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(torch::kSum));
  return {sum, (flat != kIgnore).sum().to(torch::kFloat)};
}

std::vector<std::string> describe_images(CaptionerBundle& m, const torch::Tensor& pixels,
                                         const std::vector<std::string>& prompts,
                                         const GenerationOptions& o) {
  check_generation_options(o);
  check(static_cast<int64_t>(prompts.size()) == pixels.size(0), "captioner: ", pixels.size(0), " images but ",
        prompts.size(), " prompts");
  torch::NoGradGuard no_grad;
  const auto& tok = m.clip.tokenizer;
  // Images whose prompts have the same number of tokens are written together.
  std::map<size_t, std::vector<int64_t>> by_length;
  std::vector<std::vector<int64_t>> ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    ids.push_back(prompt_ids(tok, prompts[i]));
    by_length[ids.back().size()].push_back(static_cast<int64_t>(i));
  }
  std::vector<std::string> out(prompts.size());
  for (const auto& [length, rows] : by_length) {
    const auto index = torch::tensor(rows).to(pixels.device());
    const auto conditioning = condition_on_images(m, pixels.index_select(0, index));
    const int64_t prefix = conditioning.prefix.defined() ? conditioning.prefix.size(1) : 0;
    const int64_t room = m.model->config.decoder.context - prefix - static_cast<int64_t>(length);
    if (room < 1)
      throw UsageError(str_cat("the question \"", prompts[static_cast<size_t>(rows[0])], "\" is ", length - 1,
                               " tokens: longer than the model can read and answer (",
                               m.model->config.decoder.context - prefix - 2, " at most)"));
    GenerationOptions fitted = o;
    fitted.max_new_tokens = std::min(o.max_new_tokens, room);
    std::vector<int64_t> flat;
    for (int64_t r : rows)
      flat.insert(flat.end(), ids[static_cast<size_t>(r)].begin(), ids[static_cast<size_t>(r)].end());
    const auto prompt = torch::tensor(flat)
                            .view({static_cast<int64_t>(rows.size()), static_cast<int64_t>(length)})
                            .to(pixels.device());
    const auto written = generate(
        [&](const torch::Tensor& tokens, KVCache& cache) {
          return m.model->decoder->forward(tokens, cache.empty() ? conditioning : Conditioning{}, &cache);
        },
        prompt, tok.eot_id(), {tok.sot_id()}, fitted);
    for (size_t j = 0; j < rows.size(); ++j)
      out[static_cast<size_t>(rows[j])] = text::clean_up_tokenization(tok.decode(written[j].tokens));
  }
  return out;
}

void save_captioner(const fs::path& dir, const CaptionerBundle& m) {
  fs::create_directories(dir);
  save_clip(dir / "clip", m.clip.model, m.clip.tokenizer);
  save_parameters(*m.model, dir / "model.safetensors", {{"format", "pt"}, {"producer", "mmlearn"}});
  // Last: a directory is a captioner once its config says so.
  json config = to_json(m.model->config);
  config["model_type"] = captioner_model_type(m.model->config.task);
  write_file_atomic(dir / "config.json", config.dump(2) + "\n");
}

CaptionerBundle load_captioner(const fs::path& dir) {
  for (const char* name : {"config.json", "model.safetensors", "clip"})
    check(fs::exists(dir / name), "model directory ", dir.string(), " has no ", name,
          " (a captioner directory holds config.json, model.safetensors and clip/)");
  const fs::path config_path = dir / "config.json", weights_path = dir / "model.safetensors";
  const json config = read_json_file(config_path);
  const CaptionerConfig c = captioner_config_from_json(config, config_path.string());
  check(string_value(config, "model_type") == captioner_model_type(c.task), config_path.string(),
        ": \"model_type\" \"", string_value(config, "model_type"), "\" does not match \"task\" \"", c.task,
        "\" (expected \"", captioner_model_type(c.task), "\")");
  CaptionerBundle m{load_clip(dir / "clip"), nullptr};
  check(c.decoder.vocab_size == m.clip.tokenizer.vocab_size(), config_path.string(),
        ": the decoder's vocabulary (", c.decoder.vocab_size, ") is not the tokenizer's (",
        m.clip.tokenizer.vocab_size(), ")");
  const int64_t width = probe_tokens(m.clip.model).size(2);
  check(c.connector.encoder_width == width, config_path.string(), ": the connector takes tokens ",
        c.connector.encoder_width, " wide; the image tower makes them ", width, " wide");
  const TensorMap weights = load_safetensors(weights_path);
  const double d = static_cast<double>(c.decoder.width);
  check_config_fits_weights(
      static_cast<double>(c.decoder.layers) * 12 * d * d + double(c.decoder.vocab_size) * d, weights,
      config_path.string(), weights_path.string());
  m.model = Captioner(c);
  load_parameters(*m.model, weights, weights_path.string());
  m.model->eval();
  m.clip.model->eval();
  return m;
}

}  // namespace mmlearn
