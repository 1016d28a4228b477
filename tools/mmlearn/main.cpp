// mmlearn VERB [args]: exit 0 on success, 1 on a failure of input or data (the message says what and where),
// 2 on wrong usage.
#include <torch/torch.h>

#include <iostream>

#include "commands.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/core/runtime.h"

std::vector<std::string>& mmlearn::cli::command_line() {
  static std::vector<std::string> arguments;
  return arguments;
}

int main(int argc, char** argv) {
  mmlearn::cli::command_line().assign(argv, argv + argc);
  CLI::App app{
      "mmlearn: multimodal learning — train and run image, text, audio and video models natively.\n"
      "Start with `mmlearn quickstart`; `mmlearn VERB --help` describes each verb."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mmlearn 0.1.0");
  int threads = 0;
  bool quiet = false;
  app.add_option("--threads", threads, "CPU threads (default: all cores)")->check(CLI::Range(0, 1024));
  app.add_flag("-q,--quiet", quiet, "no progress bars or informational messages");
  app.fallthrough();
  mmlearn::cli::add_quickstart(app);
  mmlearn::cli::add_data(app);
  mmlearn::cli::add_tokenizer(app);
  mmlearn::cli::add_tokenize(app);
  mmlearn::cli::add_train(app);
  mmlearn::cli::add_eval(app);
  mmlearn::cli::add_embed(app);
  mmlearn::cli::add_index(app);
  mmlearn::cli::add_search(app);
  mmlearn::cli::add_serve(app);
  mmlearn::cli::add_generate(app);
  mmlearn::cli::add_edit(app);
  mmlearn::cli::add_zero_shot(app);
  mmlearn::cli::add_transcribe(app);
  mmlearn::cli::add_caption(app);
  mmlearn::cli::add_ask(app);
  mmlearn::cli::add_predict(app);
  mmlearn::cli::add_bench(app);
  mmlearn::cli::add_dump(app);
  mmlearn::cli::add_convert(app);
  mmlearn::cli::add_models(app);
  app.parse_complete_callback([&] {
    mmlearn::init_runtime(threads);
    if (quiet) {
      mmlearn::Progress::set_enabled(false);
      mmlearn::set_log_level(mmlearn::LogLevel::quiet);
    }
  });
  try {
    app.parse(argc, argv);
  } catch (const mmlearn::cli::ExitStatus& e) {
    return e.code;
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const mmlearn::UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const mmlearn::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
