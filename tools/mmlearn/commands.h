// The CLI's verbs: each file registers one subcommand that parses its flags and calls the library.
#pragma once

#include <CLI/CLI.hpp>

namespace mmlearn::cli {

void add_data(CLI::App& app);
void add_tokenizer(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_embed(CLI::App& app);
void add_models(CLI::App& app);
void add_quickstart(CLI::App& app);
void add_zero_shot(CLI::App& app);
void add_dump(CLI::App& app);
void add_convert(CLI::App& app);
void add_transcribe(CLI::App& app);
void add_predict(CLI::App& app);
void add_bench(CLI::App& app);

}  // namespace mmlearn::cli
