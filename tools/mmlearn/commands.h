// The CLI's verbs: each file registers one subcommand that parses its flags and calls the library.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mmlearn::cli {

// The command line as given (a verb that re-runs the program, like `train --nproc`, needs it).
std::vector<std::string>& command_line();
// Thrown by a verb that ends with an exit status of its own (the workers' of `train --nproc`).
struct ExitStatus {
  int code;
};

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
void add_caption(CLI::App& app);
void add_ask(CLI::App& app);
void add_predict(CLI::App& app);
void add_bench(CLI::App& app);
void add_index(CLI::App& app);
void add_search(CLI::App& app);
void add_serve(CLI::App& app);
void add_generate(CLI::App& app);
void add_edit(CLI::App& app);

}  // namespace mmlearn::cli
