#include <cmath>
#include <iostream>

#include "commands.h"
#include "mmlearn/core/atomic_file.h"
#include "mmlearn/core/error.h"
#include "mmlearn/core/progress.h"
#include "mmlearn/models/whisper_transcribe.h"
#include "model_args.h"

namespace mmlearn::cli {

void add_transcribe(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("transcribe", "speech to text with a Whisper model, in 30 s windows of any length");
  struct Args {
    std::string model, tokenizer, language, task = "transcribe", format = "txt", output_dir, initial_prompt;
    std::vector<std::string> files;
    int64_t beam = 0;
    std::vector<double> temperatures = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};
    bool no_condition = false, without_timestamps = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("files", a->files, "audio or video files (WAV, FLAC, OGG, MP3, M4A, MP4, ...)")->required();
  cmd->add_option("--model", a->model,
                  "Whisper model: OpenAI's .pt, a Hugging Face directory, or an mmlearn directory")
      ->required();
  cmd->add_option(
      "--tokenizer", a->tokenizer,
      "multilingual.tiktoken / gpt2.tiktoken or a tokenizer directory, for OpenAI's .pt (default: "
      "beside the model)");
  cmd->add_option("--language", a->language, "language code, e.g. en (default: detected)");
  cmd->add_option("--task", a->task, "transcribe, or translate into English")
      ->check(CLI::IsMember({"transcribe", "translate"}));
  cmd->add_option("--beam", a->beam, "beam search with this many beams (default: greedy)")
      ->check(CLI::Range(0, 32));
  cmd->add_option("--temperature", a->temperatures,
                  "temperatures to fall back through when a window's text repeats or is unlikely")
      ->delimiter(',');
  cmd->add_option("--format", a->format, "txt, json (segments with times and scores), srt or vtt")
      ->check(CLI::IsMember({"txt", "json", "srt", "vtt"}));
  cmd->add_option("--output-dir", a->output_dir,
                  "write FILE.<format> there for each input (default: stdout)");
  cmd->add_option("--initial-prompt", a->initial_prompt, "text that sets the style and vocabulary");
  cmd->add_flag("--no-condition-on-previous-text", a->no_condition,
                "decode each window without the text before");
  cmd->add_flag("--without-timestamps", a->without_timestamps, "one segment per window, no timestamp tokens");
  cmd->callback([a] {
    for (double t : a->temperatures)
      if (!std::isfinite(t) || t < 0 || t > 10)
        throw UsageError(str_cat("--temperature ", t, ": each temperature must be in [0, 10]"));
    auto model = mmlearn::open_model(a->model, {.tokenizer = a->tokenizer});
    WhisperBundle& whisper = cli::need<WhisperBundle>(*model, "transcribe", "a Whisper model");
    TranscribeOptions o;
    o.decode.language = a->language;
    o.decode.task = a->task;
    o.decode.beam_size = a->beam;
    o.decode.without_timestamps = a->without_timestamps;
    o.temperatures = a->temperatures;
    o.initial_prompt = a->initial_prompt;
    o.condition_on_previous_text = !a->no_condition;
    for (const auto& file : a->files) {
      auto mel = audio::LogMelStream::of_file(file, whisper.model->config.n_mels,
                                              2 * whisper.model->config.n_audio_ctx);
      // Counted in seconds of audio, so the rate reads as speed against real time.
      const auto total = static_cast<int64_t>(std::ceil(mel.samples() / 16000.0));
      Progress bar("transcribe " + std::filesystem::path(file).filename().string(), total, "s audio");
      o.progress = [&](double done, double) { bar.update(static_cast<int64_t>(done)); };
      Transcript t = transcribe(whisper, mel, o);
      bar.finish();
      const std::string text = format_transcript(t, a->format);
      if (a->output_dir.empty()) {
        std::cout << text << std::flush;
      } else {
        std::filesystem::create_directories(a->output_dir);
        const auto out = std::filesystem::path(a->output_dir) /
                         (std::filesystem::path(file).stem().string() + "." + a->format);
        write_file_atomic(out, text);
        std::cerr << "wrote " << out.string() << "\n";
      }
    }
  });
}

}  // namespace mmlearn::cli
