// The flags every command that opens a model shares: --model (any format of any family the registry reads),
// --tokenizer and --activation for bare state dicts; and those of the commands that write text (caption,
// ask).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "mmlearn/core/error.h"
#include "mmlearn/diffusion/sampler.h"
#include "mmlearn/models/clip_import.h"
#include "mmlearn/models/registry.h"
#include "mmlearn/models/whisper_import.h"

namespace mmlearn::cli {

struct ModelArgs {
  std::string model, tokenizer, activation;
};

void add_model_options(CLI::App* cmd, ModelArgs& args);
std::unique_ptr<Model> open_model(const ModelArgs& args);

// --beam, --max-tokens, --length-penalty, --temperature, --top-k, --top-p, --no-repeat-ngram, --seed.
void add_generation_options(CLI::App* cmd, GenerationOptions& options);

// The checks of the verbs that draw (generate, edit, eval of a generator), for the options given: --steps
// from 1 to 10000, a guidance scale (`flag`) from 0 to 100; usage errors naming the flag.
void check_steps(const CLI::Option* option, int64_t steps);
void check_guidance(const CLI::Option* option, const std::string& flag, double scale);
void check_eta(const CLI::Option* option, double eta);  // 0 to 1 where given
// The sampler --sampler names (an unknown name is a usage error), or none where the flag is not given.
std::optional<Sampler> sampler_flag(const std::string& name);
// SDEdit's --strength: in (0, 1].
void check_strength(double strength);

// Whether the model writes `what` ("caption", "vqa"), or a usage error that says what it is and what
// `verb` needs.
void need_writer(const Model& model, const std::string& verb, const std::string& what);

// The family bundle a verb needs (ClipBundle for zero-shot, WhisperBundle for transcribe), or a usage error
// that says what the model is and what the verb needs.
template <class Bundle>
Bundle& need(Model& model, const std::string& verb, const std::string& kind) {
  Bundle* bundle = model.bundle<Bundle>();
  if (!bundle)
    throw UsageError(str_cat(verb, " needs ", kind, "; the model given is a ", model.family().model_type,
                             " model (", model.family().summary, ")"));
  return *bundle;
}

}  // namespace mmlearn::cli
