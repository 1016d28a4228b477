#include "mmlearn/data/record_media.h"

#include <sys/mman.h>
#include <unistd.h>

#include "mmlearn/core/error.h"
#include "mmlearn/vision/image_processor.h"

namespace mmlearn::data {

namespace {

// Prefixes an error with the record, unless it names it already.
template <class F>
auto naming(const Manifest& manifest, const Record& record, F read) {
  try {
    return read();
  } catch (const Error& e) {
    const std::string what = e.what(), where = manifest.where(record);
    if (what.rfind(where, 0) == 0) throw;
    throw Error(str_cat(where, ": ", what));
  }
}

}  // namespace

torch::Tensor read_record_image(const Manifest& manifest, const Record& record, int64_t size,
                                const DecodeOptions& decode) {
  const std::filesystem::path file = manifest.media_file(record, "image");
  return naming(manifest, record, [&] {
    if (!file.empty()) return load_image_tensor(file, size, decode);
    DecodeOptions options = decode;
    options.max_side = static_cast<int>(size);
    const std::string name = str_cat(manifest.where(record), ".", record.json["image"].get<std::string>());
    return resize_center_crop(decode_image(manifest.medium(record, "image"), name, options), size);
  });
}

AudioClip read_record_audio(const Manifest& manifest, const Record& record, int64_t window_samples) {
  const std::filesystem::path file = manifest.media_file(record, "audio");
  return naming(manifest, record, [&] {
    if (!file.empty()) return read_audio_clip(file, window_samples);
    // The decoder probes and seeks a file (FFmpeg's demuxers, the WAV length check): a member is given one
    // in memory rather than written to disk.
    const std::string bytes = manifest.medium(record, "audio");
    const int fd = ::memfd_create("mmlearn-audio", MFD_CLOEXEC);
    check(fd >= 0, "cannot make an in-memory file for ", manifest.where(record));
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      check(n > 0, "cannot write an in-memory file for ", manifest.where(record));
      done += static_cast<size_t>(n);
    }
    return read_audio_clip(str_cat("/proc/self/fd/", fd), window_samples,
                           str_cat(manifest.where(record), ".", record.json["audio"].get<std::string>()));
  });
}

}  // namespace mmlearn::data
