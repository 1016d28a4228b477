#include "model_args.h"

#include <cmath>

namespace mmlearn::cli {

void add_model_options(CLI::App* cmd, ModelArgs& a) {
  cmd->add_option("--model", a.model,
                  "model: a model directory (mmlearn or Hugging Face), an OpenAI/OpenCLIP state dict "
                  "(.safetensors, .pt, .bin) or OpenAI's Whisper .pt")
      ->required();
  cmd->add_option("--tokenizer", a.tokenizer,
                  "tokenizer files for a bare checkpoint (bpe_simple_vocab_16e6.txt.gz, tokenizer.json, a "
                  "*.tiktoken file, or a directory); default: beside the model");
  cmd->add_option("--activation", a.activation,
                  "CLIP state dicts that do not say: gelu or quick_gelu (default: quick_gelu, OpenAI's)")
      ->check(CLI::IsMember({"gelu", "quick_gelu"}));
}

std::unique_ptr<Model> open_model(const ModelArgs& a) {
  return mmlearn::open_model(a.model, {.tokenizer = a.tokenizer, .activation = a.activation});
}

void add_generation_options(CLI::App* cmd, GenerationOptions& o) {
  cmd->add_option("--beam", o.beam, "beam search with this many beams (1: greedy)")->capture_default_str();
  cmd->add_option("--max-tokens", o.max_new_tokens, "tokens written at most")->capture_default_str();
  cmd->add_option("--length-penalty", o.length_penalty,
                  "beam search ranks log-probability / length^penalty (0: no length normalization)")
      ->capture_default_str();
  cmd->add_option("--temperature", o.temperature, "> 0: sample at this temperature (with --beam 1)")
      ->capture_default_str();
  cmd->add_option("--top-k", o.top_k, "sampling: only from the k likeliest tokens (0: all)");
  cmd->add_option("--top-p", o.top_p, "sampling: only from the likeliest tokens holding this probability");
  cmd->add_option("--no-repeat-ngram", o.no_repeat_ngram,
                  "never write an n-gram of this length twice (0: off)");
  cmd->add_option("--seed", o.seed, "sampling's random seed")->capture_default_str();
}

void check_steps(const CLI::Option* option, int64_t steps) {
  if (option->count() && (steps < 1 || steps > 10000))
    throw UsageError(str_cat("--steps ", steps, ": must be between 1 and 10000"));
}

void check_guidance(const CLI::Option* option, const std::string& flag, double scale) {
  if (option->count() && !(std::isfinite(scale) && scale >= 0 && scale <= 100))
    throw UsageError(str_cat(flag, " ", scale, ": must be a number from 0 to 100"));
}

void check_eta(const CLI::Option* option, double eta) {
  if (option->count() && !(eta >= 0 && eta <= 1))
    throw UsageError(str_cat("--eta ", eta, ": must be from 0 (deterministic DDIM) to 1 (DDPM's noise)"));
}

std::optional<Sampler> sampler_flag(const std::string& name) {
  return name.empty() ? std::nullopt : std::optional<Sampler>(parse_sampler(name));
}

void check_strength(double strength) {
  if (!(std::isfinite(strength) && strength > 0 && strength <= 1))
    throw UsageError(str_cat("--strength ", strength, ": must be in (0, 1]"));
}

void need_writer(const Model& model, const std::string& verb, const std::string& what) {
  if (model.writes() == what) return;
  const std::string is =
      str_cat("the model given is a ", model.family().model_type, " model (", model.family().summary, ")");
  if (model.writes().empty())
    throw UsageError(str_cat(verb, " needs a model that writes text about images; ", is,
                             ". Train one with `mmlearn train --task ", what, "`"));
  throw UsageError(str_cat(verb, " needs a ", what == "vqa" ? "question answerer" : "captioner", "; ", is,
                           what == "vqa" ? ", which writes captions and answers no questions"
                                         : ", which answers questions (use `mmlearn ask`)"));
}

}  // namespace mmlearn::cli
