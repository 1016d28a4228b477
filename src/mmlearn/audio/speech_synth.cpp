#include "mmlearn/audio/speech_synth.h"

#include <espeak-ng/speak_lib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

#include "mmlearn/audio/audio_decoder.h"
#include "mmlearn/core/error.h"

namespace mmlearn::audio {

namespace {

int collect(short* wav, int count, espeak_EVENT* events) {
  auto* out = static_cast<std::vector<int16_t>*>(events->user_data);
  if (wav) out->insert(out->end(), wav, wav + count);
  return 0;  // continue
}

// Runs in a forked child: speaks `text` and writes [rate, count, samples] to `fd`. espeak-ng keeps state from
// one utterance to the next (pitch flutter, filter and echo buffers), so the same text would come out
// slightly differently depending on what was spoken before; a fresh process per utterance makes speech a pure
// function of text and voice (about 8 ms each).
[[noreturn]] void speak_in_child(int fd, const std::string& text, const Voice& voice) {
  const int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, espeakINITIALIZE_DONT_EXIT);
  if (rate <= 0) _exit(3);
  espeak_SetSynthCallback(collect);
  if (espeak_SetVoiceByName(voice.name.c_str()) != EE_OK) _exit(4);
  espeak_SetParameter(espeakRATE, voice.rate, 0);
  espeak_SetParameter(espeakPITCH, voice.pitch, 0);
  std::vector<int16_t> samples;
  if (espeak_Synth(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, &samples) !=
      EE_OK)
    _exit(5);
  const int64_t header[2] = {rate, static_cast<int64_t>(samples.size())};
  auto write_all = [&](const void* data, size_t bytes) {
    for (auto* p = static_cast<const char*>(data); bytes > 0;) {
      const ssize_t n = ::write(fd, p, bytes);
      if (n <= 0) _exit(6);
      p += n;
      bytes -= static_cast<size_t>(n);
    }
  };
  write_all(header, sizeof header);
  write_all(samples.data(), samples.size() * sizeof(int16_t));
  _exit(0);
}

bool read_all(int fd, void* data, size_t bytes) {
  for (auto* p = static_cast<char*>(data); bytes > 0;) {
    const ssize_t n = ::read(fd, p, bytes);
    if (n <= 0) return false;
    p += n;
    bytes -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

const std::vector<std::string>& speech_voices() {
  static const std::vector<std::string> voices = {"en-us", "en-us+f2", "en-us+m3", "en+f4",
                                                  "en+m1", "en-us+f3", "en+m4",    "en-us+m2"};
  return voices;
}

std::vector<float> synthesize_speech(const std::string& text, const Voice& voice, int sample_rate) {
  check(voice.rate >= espeakRATE_MINIMUM && voice.rate <= espeakRATE_MAXIMUM, "speech rate ", voice.rate,
        " is outside ", espeakRATE_MINIMUM, "..", espeakRATE_MAXIMUM, " words per minute");
  check(voice.pitch >= 0 && voice.pitch <= 100, "speech pitch ", voice.pitch, " is outside 0..100");
  check(text.size() <= 10000, "text to speak is longer than 10000 bytes");
  int fds[2];
  check(::pipe(fds) == 0, "cannot create a pipe for espeak-ng");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    speak_in_child(fds[1], text, voice);
  }
  ::close(fds[1]);
  int64_t header[2] = {0, 0};
  std::vector<int16_t> pcm;
  bool ok = pid > 0 && read_all(fds[0], header, sizeof header) && header[1] >= 0 && header[1] <= 48000 * 600;
  if (ok) {
    pcm.resize(static_cast<size_t>(header[1]));
    ok = read_all(fds[0], pcm.data(), pcm.size() * sizeof(int16_t));
  }
  ::close(fds[0]);
  int status = 0;
  if (pid > 0) ::waitpid(pid, &status, 0);
  check(pid > 0, "cannot start espeak-ng (fork failed)");
  check(ok && WIFEXITED(status) && WEXITSTATUS(status) == 0, "espeak-ng could not speak \"", text,
        "\" with voice \"", voice.name, "\" (exit ", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
        "; is espeak-ng-data installed and the voice known?)");
  std::vector<float> samples(pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) samples[i] = static_cast<float>(pcm[i]) / 32768.0f;
  return resample(samples, static_cast<int>(header[0]), sample_rate);
}

}  // namespace mmlearn::audio
