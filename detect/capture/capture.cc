// Capture: the OpenCV frame source and the per-camera decode thread.
#include "detect/capture/capture.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <utility>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "base/logging.h"

namespace edged::detect {

namespace {

bool IsUrl(std::string_view input) { return input.find("://") != std::string_view::npos; }
bool IsV4l2(std::string_view input) { return input.starts_with("/dev/video"); }

// OpenCV reads its FFmpeg options from the environment when a capture opens; RTSP over UDP loses
// packets on busy Wi-Fi, so TCP is the default (as Frigate's presets do). A user's own setting wins.
void EnsureRtspOverTcp() {
  static std::once_flag once;
  std::call_once(once, [] { setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp", /*overwrite=*/0); });
}

class OpenCvFrameSource final : public FrameSource {
 public:
  OpenCvFrameSource(std::string input, FrameSourceOptions options)
      : input_(std::move(input)), shown_(RedactUrl(input_)), options_(options) {}

  Status Open() override {
    Close();
    if (!IsUrl(input_)) {
      struct stat st {};
      if (::stat(input_.c_str(), &st) != 0) {
        const int err = errno;
        if (err == ENOENT) {
          return NotFoundError(fmt::format("input file '{}' does not exist; check the camera's input path "
                                           "(a file, /dev/videoN, rtsp:// or http:// URL)",
                                           shown_));
        }
        return ErrnoStatus(fmt::format("stat {}", shown_), err);
      }
    }
    try {
      EnsureRtspOverTcp();
      if (IsV4l2(input_)) {
        cap_.open(input_, cv::CAP_V4L2);
      } else {
        cap_.open(input_, cv::CAP_FFMPEG,
                  {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, static_cast<int>(options_.open_timeout.count()),
                   cv::CAP_PROP_READ_TIMEOUT_MSEC, static_cast<int>(options_.read_timeout.count())});
      }
      if (!cap_.isOpened()) {
        return UnavailableError(fmt::format(
            "cannot open '{}': unreachable, refused, or not a video stream FFmpeg can decode; check the URL, "
            "credentials and that the camera is on",
            shown_));
      }
      fps_ = cap_.get(cv::CAP_PROP_FPS);
      if (!(fps_ > 0 && fps_ < 1000)) fps_ = 0;  // MJPEG over HTTP reports nonsense or nothing
    } catch (const std::exception& e) {
      cap_.release();
      return UnavailableError(fmt::format("cannot open '{}': {}", shown_, e.what()));
    }
    return OkStatus();
  }

  StatusOr<bool> Grab() override {
    try {
      if (cap_.grab()) return true;
    } catch (const std::exception& e) {
      return DataLossError(fmt::format("reading '{}' failed: {}", shown_, e.what()));
    }
    if (is_file()) return false;
    return UnavailableError(fmt::format(
        "stream '{}' ended or stalled (nothing decodable for {} ms); the camera went away or sends garbage",
        shown_, options_.read_timeout.count()));
  }

  Status Retrieve(cv::Mat* bgr) override {
    try {
      if (cap_.retrieve(*bgr) && !bgr->empty() && bgr->type() == CV_8UC3) return OkStatus();
    } catch (const std::exception& e) {
      return DataLossError(fmt::format("decoding a frame of '{}' failed: {}", shown_, e.what()));
    }
    return DataLossError(fmt::format("'{}' produced a frame that is not 8-bit BGR", shown_));
  }

  void Close() override { cap_.release(); }
  bool is_file() const override { return !IsUrl(input_) && !IsV4l2(input_); }
  double native_fps() const override { return fps_; }

 private:
  std::string input_;
  std::string shown_;
  FrameSourceOptions options_;
  cv::VideoCapture cap_;
  double fps_ = 0;
};

}  // namespace

cv::Mat LumaFromBgr(const cv::Mat& bgr, cv::Mat* i420) {
  const cv::Mat even = bgr(cv::Rect(0, 0, bgr.cols & ~1, bgr.rows & ~1));
  cv::cvtColor(even, *i420, cv::COLOR_BGR2YUV_I420);
  return i420->rowRange(0, even.rows);
}

std::string RedactUrl(std::string_view url) {
  std::string out(url);
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t host_start = scheme + 3;
    const size_t path = out.find_first_of("/?#", host_start);
    const size_t at = out.rfind('@', path == std::string::npos ? out.size() : path);
    if (at != std::string::npos && at > host_start) {
      const size_t colon = out.find(':', host_start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (std::string_view key : {"password=", "pass=", "pwd="}) {
    size_t pos = 0;
    while ((pos = out.find(key, pos)) != std::string::npos) {
      const bool at_param = pos > 0 && (out[pos - 1] == '?' || out[pos - 1] == '&');
      pos += key.size();
      if (!at_param) continue;
      const size_t end = out.find_first_of("&#", pos);
      out.replace(pos, (end == std::string::npos ? out.size() : end) - pos, "***");
    }
  }
  return out;
}

std::unique_ptr<FrameSource> MakeOpenCvFrameSource(std::string input, FrameSourceOptions options) {
  return std::make_unique<OpenCvFrameSource>(std::move(input), options);
}

CaptureOptions CaptureOptions::FromConfig(std::string camera, const config::CameraConfig& config) {
  CaptureOptions o;
  o.camera = std::move(camera);
  o.fps = config.fps;
  o.loop = config.loop;
  return o;
}

Capture::Capture(std::unique_ptr<FrameSource> source, CaptureOptions options)
    : source_(std::move(source)), options_(std::move(options)) {}

Capture::~Capture() { Stop(); }

void Capture::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void Capture::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.request_stop();
    cv_.notify_all();
    thread_.join();
  }
  std::lock_guard lock(mu_);
  stats_.up = false;
}

std::optional<Frame> Capture::Next(std::chrono::milliseconds timeout) {
  std::optional<Frame> out;
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return slot_.has_value() || stats_.ended || stopping_; });
    if (!slot_) return std::nullopt;
    out = std::move(slot_);
    slot_.reset();
    ++stats_.taken;
  }
  if (options_.wait_for_consumer) cv_.notify_all();  // the decode thread may wait for the empty slot
  return out;
}

CaptureStats Capture::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Capture::SetError(const Status& status) {
  const std::string text = fmt::format("camera '{}': {}", options_.camera, status.message());
  std::lock_guard lock(mu_);
  ++stats_.failures;
  stats_.up = false;
  if (stats_.last_error != text) {  // one log line per new problem, not one per retry
    Logger("capture")->warn("{}", text);
    stats_.last_error = text;
  }
}

bool Capture::SleepFor(std::stop_token& stop, std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, stop, d, [] { return false; }) && !stop.stop_requested();
}

void Capture::Run(std::stop_token stop) {
  auto log = Logger("capture");
  std::chrono::milliseconds backoff = options_.backoff_initial;
  bool opened_before = false;
  // Files: where the current pass starts on the playback clock, so times keep growing across loops.
  double pass_start = 0;
  double next_sample = 0;
  while (!stop.stop_requested()) {
    Status opened = source_->Open();
    if (!opened.ok()) {
      SetError(opened);
      if (!SleepFor(stop, backoff)) break;
      backoff = std::min(backoff * 2, options_.backoff_max);
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (opened_before) ++stats_.reconnects;
      stats_.up = true;
      if (!stats_.last_error.empty()) log->info("camera '{}': connected again", options_.camera);
      stats_.last_error.clear();
    }
    opened_before = true;

    // Sampling on the stream's clock: files by frame number and native rate, streams by wall time.
    const bool file = source_->is_file();
    const double native = source_->native_fps();
    const auto connected_at = std::chrono::steady_clock::now();
    const double period = options_.fps > 0 ? 1.0 / options_.fps : 0;
    const bool timed_by_file = file && native > 0;
    if (!timed_by_file) next_sample = 0;  // a stream's clock starts again at every connection
    uint64_t frames_here = 0;
    bool reached_max = false;
    bool decoded_any = false;
    Status failure;
    while (!stop.stop_requested()) {
      StatusOr<bool> grabbed = source_->Grab();
      if (!grabbed.ok()) {
        failure = grabbed.status();
        break;
      }
      if (!*grabbed) break;  // end of file
      decoded_any = true;
      const auto now = std::chrono::steady_clock::now();
      const double in_pass = timed_by_file ? static_cast<double>(frames_here) / native
                                           : std::chrono::duration<double>(now - connected_at).count();
      const double t = timed_by_file ? pass_start + in_pass : in_pass;
      ++frames_here;
      uint64_t sequence;
      {
        std::lock_guard lock(mu_);
        sequence = ++stats_.decoded;
      }
      reached_max = options_.max_frames > 0 && sequence >= options_.max_frames;
      if (timed_by_file && options_.realtime_files) {
        // Pace a file like a camera: frame n is due n/fps seconds after the file was opened.
        const auto due = connected_at + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                            std::chrono::duration<double>(in_pass));
        if (due > now && !SleepFor(stop, std::chrono::duration_cast<std::chrono::milliseconds>(due - now))) break;
      }
      if (period > 0 && t + 1e-9 < next_sample) {
        std::lock_guard lock(mu_);
        ++stats_.skipped;
        if (reached_max) break;
        continue;
      }
      // The next sample is one period later; after a stall, restart from now rather than bursting.
      next_sample = std::max(next_sample + period, t + period * 0.5);
      Frame frame;
      if (Status st = source_->Retrieve(&frame.bgr); !st.ok()) {
        failure = st;
        break;
      }
      frame.luma = LumaFromBgr(frame.bgr, &frame.i420);
      frame.sequence = sequence;
      frame.stream_time_s = t;
      frame.decoded_at = now;
      {
        std::unique_lock lock(mu_);
        if (options_.wait_for_consumer && file) {
          cv_.wait(lock, stop, [&] { return !slot_.has_value() || stopping_; });
          if (stop.stop_requested() || stopping_) break;
        }
        if (slot_) ++stats_.dropped;
        slot_ = std::move(frame);
        ++stats_.delivered;
      }
      cv_.notify_all();
      backoff = options_.backoff_initial;
      if (reached_max) break;
    }
    source_->Close();
    if (stop.stop_requested()) break;
    if (failure.ok() && (file || reached_max)) {
      if (!decoded_any) {
        SetError(DataLossError("the file holds no decodable video frame; is it a video file?"));
      } else if (options_.loop && !reached_max) {
        pass_start += timed_by_file ? static_cast<double>(frames_here) / native : 0;
        continue;  // start the file again at once
      } else {
        std::lock_guard lock(mu_);
        stats_.ended = true;
        stats_.up = false;
        log->info("camera '{}': {}", options_.camera, reached_max ? "read the frames asked for" : "end of file");
        cv_.notify_all();
        return;
      }
    } else {
      SetError(failure.ok() ? UnavailableError("stream ended") : failure);
    }
    if (!SleepFor(stop, backoff)) break;
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

}  // namespace edged::detect
