#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "../test_util.h"
#include "mmlearn/audio/audio_decoder.h"

using namespace mmlearn;
using namespace mmlearn::test;
namespace fs = std::filesystem;

namespace {

int run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

bool have_ffmpeg() { return run("ffmpeg -version") == 0; }

// What Whisper's loader gets: `ffmpeg -ac 1 -ar RATE -f s16le` scaled to [-1, 1).
std::vector<float> ffmpeg_samples(const fs::path& file, const fs::path& dir, int rate = 16000) {
  const fs::path raw = dir / (file.filename().string() + ".s16le");
  EXPECT_EQ(run("ffmpeg -nostdin -y -threads 0 -i '" + file.string() +
                "' -f s16le -ac 1 -acodec pcm_s16le -ar " + std::to_string(rate) + " '" + raw.string() + "'"),
            0);
  std::ifstream in(raw, std::ios::binary);
  std::vector<int16_t> pcm(fs::file_size(raw) / 2);
  in.read(reinterpret_cast<char*>(pcm.data()), static_cast<std::streamsize>(pcm.size() * 2));
  std::vector<float> samples;
  for (int16_t v : pcm) samples.push_back(v / 32768.0f);
  return samples;
}

// A two-tone chirp with a second channel, made by ffmpeg's own generators so every format can be written.
fs::path make_file(const fs::path& dir, const std::string& name, const std::string& codec_args,
                   int rate = 44100, int channels = 2, double seconds = 3.0) {
  const fs::path file = dir / name;
  const std::string source =
      "-f lavfi -i 'aevalsrc=0.4*sin(2*PI*(200+300*t)*t)|0.3*sin(2*PI*1000*t):s=" + std::to_string(rate) +
      ":d=" + std::to_string(seconds) + "'";
  EXPECT_EQ(run("ffmpeg -nostdin -y " + source + " -ac " + std::to_string(channels) + " " + codec_args +
                " '" + file.string() + "'"),
            0)
      << name;
  return file;
}

}  // namespace

TEST(AudioDecoder, MatchesWhispersFfmpegLoaderSampleForSampleInEveryFormat) {
  if (!have_ffmpeg()) GTEST_SKIP() << "ffmpeg is not installed";
  auto dir = temp_dir("formats");
  std::vector<fs::path> files = {
      make_file(dir, "stereo44k.wav", "-c:a pcm_s16le"),
      make_file(dir, "mono8k_float.wav", "-c:a pcm_f32le", 8000, 1),
      make_file(dir, "s24_48k.flac", "-c:a flac -sample_fmt s32", 48000, 2),
      make_file(dir, "stereo.mp3", "-c:a libmp3lame -b:a 96k"),
      make_file(dir, "stereo.m4a", "-c:a aac -b:a 96k"),
      make_file(dir, "stereo.ogg", "-c:a libvorbis"),
      make_file(dir, "mono16k.opus", "-c:a libopus", 48000, 1),
  };
  // The audio track of a video file.
  const fs::path video = dir / "clip.mp4";
  ASSERT_EQ(run("ffmpeg -nostdin -y -f lavfi -i testsrc=size=64x48:rate=10:duration=2 -f lavfi -i "
                "sine=frequency=600:duration=2 -c:v mpeg4 -c:a aac -shortest '" +
                video.string() + "'"),
            0);
  files.push_back(video);
  const fs::path jfk = shared_dir() / "assets" / "whisper" / "jfk.flac";
  if (fs::exists(jfk)) files.push_back(jfk);
  for (const auto& file : files) {
    auto expected = ffmpeg_samples(file, dir);
    auto got = audio::load_audio(file);
    ASSERT_EQ(got.size(), expected.size()) << file;
    size_t differing = 0;
    for (size_t i = 0; i < got.size(); ++i) differing += got[i] != expected[i];
    EXPECT_EQ(differing, 0u) << file << ": " << differing << " of " << got.size() << " samples differ";
  }
}

TEST(AudioDecoder, StreamsInPiecesThatJoinToTheWholeFile) {
  if (!have_ffmpeg()) GTEST_SKIP() << "ffmpeg is not installed";
  auto dir = temp_dir("stream");
  auto file = make_file(dir, "long.flac", "-c:a flac", 22050, 2, 20.0);
  auto whole = audio::load_audio(file, {.sample_rate = 8000});
  audio::AudioDecoder decoder(file, {.sample_rate = 8000});
  EXPECT_EQ(decoder.sample_rate(), 8000);
  EXPECT_EQ(decoder.source_sample_rate(), 22050);
  EXPECT_EQ(decoder.source_channels(), 2);
  EXPECT_EQ(decoder.codec(), "flac");
  EXPECT_NEAR(decoder.declared_seconds(), 20.0, 0.01);
  std::vector<float> joined, piece;
  int pieces = 0;
  while (decoder.read(piece, 7777) > 0) {
    EXPECT_LE(piece.size(), 7777u);
    joined.insert(joined.end(), piece.begin(), piece.end());
    piece.clear();
    ++pieces;
  }
  EXPECT_EQ(pieces, static_cast<int>((whole.size() + 7776) / 7777));
  EXPECT_EQ(joined, whole);
  EXPECT_NEAR(static_cast<double>(whole.size()), 20.0 * 8000, 2);
}

TEST(AudioDecoder, BadInputGetsClearErrors) {
  auto dir = temp_dir("bad");
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir / name, std::ios::binary) << bytes;
    return dir / name;
  };
  auto wav_header = [](uint16_t format, uint16_t bits, uint32_t data_bytes) {
    std::string h = "RIFF";
    auto u32 = [&](uint32_t v) { h.append(reinterpret_cast<const char*>(&v), 4); };
    auto u16 = [&](uint16_t v) { h.append(reinterpret_cast<const char*>(&v), 2); };
    u32(36 + data_bytes);
    h += "WAVEfmt ";
    u32(16), u16(format), u16(1), u32(16000), u32(16000u * bits / 8), u16(static_cast<uint16_t>(bits / 8)),
        u16(bits);
    h += "data";
    u32(data_bytes);
    return h;
  };
  EXPECT_NE(error_of([&] { audio::load_audio(dir / "missing.wav"); }).find("file not found"),
            std::string::npos);
  EXPECT_NE(error_of([&] { audio::load_audio(write("empty.wav", "")); }).find("empty file"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { audio::load_audio(write("zero.wav", wav_header(1, 16, 0))); }).find("no audio samples"),
      std::string::npos);
  auto text = error_of([&] { audio::load_audio(write("notes.mp3", "these are words, not sound\n")); });
  EXPECT_NE(text.find("notes.mp3"), std::string::npos) << text;
  EXPECT_NE(text.find("not a readable audio"), std::string::npos) << text;
  auto odd = error_of(
      [&] { audio::load_audio(write("odd.wav", wav_header(0x7777, 16, 3200) + std::string(3200, 1))); });
  EXPECT_NE(odd.find("unsupported audio codec or sample format"), std::string::npos) << odd;
  if (!have_ffmpeg()) return;
  auto png = dir / "picture.png";
  ASSERT_EQ(
      run("ffmpeg -nostdin -y -f lavfi -i testsrc=size=32x32:duration=1 -frames:v 1 '" + png.string() + "'"),
      0);
  EXPECT_NE(error_of([&] { audio::load_audio(png); }).find("has no audio stream"), std::string::npos);
  // A FLAC cut in half declares more than it holds.
  auto flac = make_file(dir, "whole.flac", "-c:a flac", 16000, 1, 6.0);
  std::ifstream in(flac, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  auto cut = error_of([&] { audio::load_audio(write("cut.flac", bytes.substr(0, bytes.size() / 2))); });
  EXPECT_NE(cut.find("cut.flac: truncated"), std::string::npos) << cut;
  // Too long for load_audio: a clear refusal, not a huge allocation.
  auto limit = error_of([&] { audio::load_audio(flac, {.max_seconds = 2.0}); });
  EXPECT_NE(limit.find("longer than 2 s"), std::string::npos) << limit;
}
