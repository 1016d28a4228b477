#include "mmlearn/audio/audio_decoder.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"

namespace mmlearn::audio {

namespace {

// FFmpeg reports details through its log; keep the last error of this thread for our messages instead of
// letting it print.
thread_local std::string last_ffmpeg_error;

void capture_log(void*, int level, const char* format, va_list args) {
  if (level > AV_LOG_ERROR) return;
  char line[512];
  vsnprintf(line, sizeof line, format, args);
  last_ffmpeg_error = line;
  while (!last_ffmpeg_error.empty() && last_ffmpeg_error.back() == '\n') last_ffmpeg_error.pop_back();
}

void install_log_capture() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(capture_log); });
}

std::string describe(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof text);
  std::string message = text;
  if (!last_ffmpeg_error.empty()) message += " (" + last_ffmpeg_error + ")";
  return message;
}

}  // namespace

struct AudioDecoder::State {
  std::filesystem::path path;
  AudioOptions options;
  AVFormatContext* format = nullptr;
  AVCodecContext* decoder = nullptr;
  SwrContext* resampler = nullptr;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  int stream = -1;
  bool demuxer_done = false, decoder_done = false, finished = false;
  int64_t source_samples = 0;  // decoded, at the file's rate
  int64_t bad_packets = 0;
  std::vector<float> pending;  // converted samples not yet handed out, from pending_start on
  size_t pending_start = 0;
  std::vector<int16_t> converted;

  ~State() {
    swr_free(&resampler);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&decoder);
    avformat_close_input(&format);
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(str_cat(options.name.empty() ? path.string() : options.name, ": ", what));
  }

  // FFmpeg takes a WAV's length from the file when its data chunk claims more, so a WAV cut short decodes
  // its first part without complaint: the RIFF header's own claim is checked here.
  void check_wav_length() const {
    std::ifstream in(path, std::ios::binary);
    char header[12];
    if (!in.read(header, 12) || std::memcmp(header, "RIFF", 4) != 0 ||
        std::memcmp(header + 8, "WAVE", 4) != 0)
      return;
    const uint64_t file_size = std::filesystem::file_size(path);
    auto u32 = [](const char* p) {
      return uint32_t(uint8_t(p[0])) | uint32_t(uint8_t(p[1])) << 8 | uint32_t(uint8_t(p[2])) << 16 |
             uint32_t(uint8_t(p[3])) << 24;
    };
    uint64_t offset = 12;
    char chunk[8];
    for (int chunks = 0; chunks < 64 && in.seekg(static_cast<std::streamoff>(offset)) && in.read(chunk, 8);
         ++chunks) {
      const uint32_t size = u32(chunk + 4);
      if (std::memcmp(chunk, "data", 4) == 0) {
        // 0 and 0xFFFFFFFF mark a stream whose length was not known when the header was written.
        if (size != 0 && size != 0xFFFFFFFFu && offset + 8 + size > file_size)
          fail(str_cat("truncated: the WAV header declares ", size, " bytes of audio but the file holds ",
                       file_size - offset - 8, " (re-download or re-encode it)"));
        return;
      }
      offset += 8 + size + (size & 1);  // chunks are padded to an even length
    }
  }

  void open() {
    last_ffmpeg_error.clear();
    if (!std::filesystem::exists(path)) fail("file not found");
    if (std::filesystem::is_directory(path)) fail("is a directory, not an audio file");
    if (std::filesystem::file_size(path) == 0) fail("empty file (0 bytes), not audio");
    check_wav_length();
    if (int rc = avformat_open_input(&format, path.c_str(), nullptr, nullptr); rc < 0)
      fail("not a readable audio or video file: " + describe(rc));
    if (int rc = avformat_find_stream_info(format, nullptr); rc < 0)
      fail("cannot read the stream information: " + describe(rc));
    const AVCodec* codec = nullptr;
    stream = av_find_best_stream(format, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (stream == AVERROR_STREAM_NOT_FOUND) fail("has no audio stream");
    if (stream < 0 || codec == nullptr) {  // an audio stream, but no decoder for it
      std::string name = "unknown";
      for (unsigned i = 0; i < format->nb_streams; ++i)
        if (const AVCodecParameters* p = format->streams[i]->codecpar; p->codec_type == AVMEDIA_TYPE_AUDIO) {
          char tag[32];
          snprintf(tag, sizeof tag, "format tag 0x%x", p->codec_tag);
          name = p->codec_id == AV_CODEC_ID_NONE ? tag : avcodec_get_name(p->codec_id);
        }
      fail(str_cat("unsupported audio codec or sample format (", name,
                   "; convert it, e.g. ffmpeg -i IN -ar 16000 -ac 1 OUT.wav)"));
    }
    const AVCodecParameters* parameters = format->streams[stream]->codecpar;
    decoder = avcodec_alloc_context3(codec);
    if (!decoder || avcodec_parameters_to_context(decoder, parameters) < 0) fail("cannot set up the decoder");
    if (int rc = avcodec_open2(decoder, codec, nullptr); rc < 0)
      fail(str_cat("cannot decode its ", codec->name, " audio: ", describe(rc)));
    packet = av_packet_alloc();
    frame = av_frame_alloc();
    if (!packet || !frame) fail("out of memory");
  }

  // The resampler is set up from the first decoded frame: only then are format, rate and layout certain.
  void setup_resampler(const AVFrame& f) {
    AVChannelLayout in_layout{};
    if (f.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
      av_channel_layout_default(&in_layout, f.ch_layout.nb_channels);
    else if (av_channel_layout_copy(&in_layout, &f.ch_layout) < 0)
      fail("cannot read its channel layout");
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    int rc = swr_alloc_set_opts2(&resampler, &mono, AV_SAMPLE_FMT_S16, options.sample_rate, &in_layout,
                                 static_cast<AVSampleFormat>(f.format), f.sample_rate, 0, nullptr);
    av_channel_layout_uninit(&in_layout);
    if (rc < 0 || swr_init(resampler) < 0)
      fail(str_cat("unsupported sample format \"",
                   av_get_sample_fmt_name(static_cast<AVSampleFormat>(f.format)), "\" or layout (",
                   f.ch_layout.nb_channels, " channels at ", f.sample_rate, " Hz)"));
    input_format = f.format;
    input_rate = f.sample_rate;
    input_channels = f.ch_layout.nb_channels;
  }
  int input_format = -1, input_rate = 0, input_channels = 0;

  // Converts `f` (or, with nullptr, what the resampler still holds) and appends it to pending.
  void convert(const AVFrame* f) {
    const int in_samples = f ? f->nb_samples : 0;
    const int capacity = swr_get_out_samples(resampler, in_samples);
    if (capacity < 0) fail("resampler failure");
    converted.resize(static_cast<size_t>(capacity) + 16);
    uint8_t* out = reinterpret_cast<uint8_t*>(converted.data());
    const int n = swr_convert(resampler, &out, static_cast<int>(converted.size()),
                              f ? const_cast<const uint8_t**>(f->extended_data) : nullptr, in_samples);
    if (n < 0) fail("resampling failed: " + describe(n));
    for (int i = 0; i < n; ++i) pending.push_back(converted[static_cast<size_t>(i)] / 32768.0f);
  }

  void take(const AVFrame& f) {
    if (f.nb_samples <= 0) return;
    if (!resampler) setup_resampler(f);
    if (f.format != input_format || f.sample_rate != input_rate || f.ch_layout.nb_channels != input_channels)
      fail("changes its sample format, rate or channel count midway; convert it to WAV first");
    source_samples += f.nb_samples;
    convert(&f);
  }

  // One step of demuxing/decoding; sets `finished` at the end.
  void step() {
    if (!decoder_done) {
      int rc = avcodec_receive_frame(decoder, frame);
      if (rc == 0) {
        take(*frame);
        av_frame_unref(frame);
        return;
      }
      if (rc == AVERROR_EOF) {
        decoder_done = true;
        return;
      }
      if (rc != AVERROR(EAGAIN)) {  // a frame that did not decode: skip it, as ffmpeg does
        ++bad_packets;
        return;
      }
      if (demuxer_done) {  // the decoder wants input after the flush: nothing more will come
        decoder_done = true;
        return;
      }
      rc = av_read_frame(format, packet);
      if (rc < 0) {
        demuxer_done = true;
        avcodec_send_packet(decoder, nullptr);  // flush
        return;
      }
      if (packet->stream_index == stream && avcodec_send_packet(decoder, packet) < 0) ++bad_packets;
      av_packet_unref(packet);
      return;
    }
    if (resampler) convert(nullptr);
    finish();
  }

  void finish() {
    finished = true;
    if (source_samples == 0)
      fail(bad_packets ? "no audio could be decoded: " + describe(AVERROR_INVALIDDATA)
                       : std::string("contains no audio samples (zero-length audio)"));
    const double decoded = source_samples / static_cast<double>(input_rate);
    const double declared = declared_seconds();
    // Only containers that state their length exactly (FLAC, WAV, MP4, ...) can prove a file was cut short;
    // MP3 durations estimated from the bit rate are too rough to judge.
    const bool exact = format->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE;
    if (exact && declared > 0 && decoded < declared - std::max(0.2, 0.01 * declared))
      fail(str_cat("truncated: the file declares ", declared, " s of audio but only ", decoded,
                   " s could be decoded (re-download or re-encode it)"));
    if (bad_packets)
      log_warn(path.string(), ": skipped ", bad_packets, " undecodable audio packet(s) (",
               last_ffmpeg_error.empty() ? "corrupt data" : last_ffmpeg_error, ")");
  }

  double declared_seconds() const {
    const AVStream* s = format->streams[stream];
    if (s->duration > 0 && s->time_base.den > 0) return s->duration * av_q2d(s->time_base);
    if (format->duration > 0) return format->duration / static_cast<double>(AV_TIME_BASE);
    return 0;
  }
};

AudioDecoder::AudioDecoder(const std::filesystem::path& path, AudioOptions options)
    : state_(std::make_unique<State>()) {
  install_log_capture();
  check(options.sample_rate >= 1000 && options.sample_rate <= 384000, "audio sample rate ",
        options.sample_rate, " Hz is outside 1000..384000");
  state_->path = path;
  state_->options = options;
  state_->open();
}

AudioDecoder::~AudioDecoder() = default;

int64_t AudioDecoder::read(std::vector<float>& out, int64_t max_samples) {
  State& s = *state_;
  while (!s.finished && static_cast<int64_t>(s.pending.size() - s.pending_start) < max_samples) s.step();
  const int64_t n = std::min<int64_t>(max_samples, static_cast<int64_t>(s.pending.size() - s.pending_start));
  auto first = s.pending.begin() + static_cast<std::ptrdiff_t>(s.pending_start);
  out.insert(out.end(), first, first + n);
  s.pending_start += static_cast<size_t>(n);
  if (2 * s.pending_start >= s.pending.size()) {  // drop what was handed out, so pending stays small
    s.pending.erase(s.pending.begin(), s.pending.begin() + static_cast<std::ptrdiff_t>(s.pending_start));
    s.pending_start = 0;
  }
  return n;
}

const std::filesystem::path& AudioDecoder::path() const { return state_->path; }
int AudioDecoder::sample_rate() const { return state_->options.sample_rate; }
int AudioDecoder::source_sample_rate() const { return state_->decoder->sample_rate; }
int AudioDecoder::source_channels() const { return state_->decoder->ch_layout.nb_channels; }
std::string AudioDecoder::codec() const { return state_->decoder->codec->name; }
double AudioDecoder::declared_seconds() const { return state_->declared_seconds(); }

std::vector<float> load_audio(const std::filesystem::path& path, const AudioOptions& options) {
  AudioDecoder decoder(path, options);
  const auto limit = static_cast<int64_t>(options.max_seconds * options.sample_rate);
  std::vector<float> samples;
  while (decoder.read(samples, std::min<int64_t>(limit + 1 - static_cast<int64_t>(samples.size()),
                                                 options.sample_rate * 60)) > 0) {
    if (static_cast<int64_t>(samples.size()) > limit)
      throw Error(str_cat(options.name.empty() ? path.string() : options.name, ": longer than ",
                          options.max_seconds,
                          " s; process it in windows (transcribe does) or raise the limit"));
  }
  return samples;
}

std::vector<float> resample(const std::vector<float>& samples, int from_rate, int to_rate) {
  if (from_rate == to_rate || samples.empty()) return samples;
  check(from_rate > 0 && to_rate > 0, "invalid sample rates ", from_rate, " -> ", to_rate);
  SwrContext* swr = nullptr;
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  if (swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, to_rate, &mono, AV_SAMPLE_FMT_FLT, from_rate, 0,
                          nullptr) < 0 ||
      swr_init(swr) < 0) {
    swr_free(&swr);
    throw Error(str_cat("cannot resample from ", from_rate, " to ", to_rate, " Hz"));
  }
  std::vector<float> out(
      static_cast<size_t>(swr_get_out_samples(swr, static_cast<int>(samples.size())) + 256));
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  const auto* src = reinterpret_cast<const uint8_t*>(samples.data());
  int n = swr_convert(swr, &dst, static_cast<int>(out.size()), &src, static_cast<int>(samples.size()));
  int total = std::max(n, 0);
  if (n >= 0) {  // drain the filter's delay
    dst = reinterpret_cast<uint8_t*>(out.data() + total);
    n = swr_convert(swr, &dst, static_cast<int>(out.size()) - total, nullptr, 0);
    total += std::max(n, 0);
  }
  swr_free(&swr);
  check(n >= 0, "resampling failed");
  out.resize(static_cast<size_t>(total));
  return out;
}

std::string encode_wav(const std::vector<float>& samples, int sample_rate) {
  const auto data_bytes = static_cast<uint32_t>(samples.size() * 2);
  std::string out;
  auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); };
  out += "RIFF";
  u32(36 + data_bytes);
  out += "WAVEfmt ";
  u32(16);
  u16(1);  // PCM
  u16(1);  // mono
  u32(static_cast<uint32_t>(sample_rate));
  u32(static_cast<uint32_t>(sample_rate) * 2);
  u16(2);
  u16(16);
  out += "data";
  u32(data_bytes);
  for (float v : samples) {
    const auto s = static_cast<int16_t>(std::lrint(std::clamp(v, -1.0f, 32767.0f / 32768.0f) * 32768.0f));
    u16(static_cast<uint16_t>(s));
  }
  return out;
}

}  // namespace mmlearn::audio
