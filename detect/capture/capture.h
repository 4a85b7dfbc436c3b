// Camera capture: one decode thread per camera reading a FrameSource (OpenCV's FFmpeg backend for
// rtsp:// over TCP, http(s):// MJPEG, files; V4L2 for /dev/videoN), sampling to the detection fps and
// handing frames over latest-wins (a slot of one frame), so a slow consumer never stalls decoding: the
// frame it did not take is counted as dropped. When the stream dies or cannot be opened the thread
// reconnects with capped exponential backoff; files end or loop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <opencv2/core.hpp>

#include "base/status.h"
#include "config/config.h"

namespace edged::detect {

struct Frame {
  cv::Mat bgr;    // CV_8UC3, owned by this frame (reference counted, never reused by the capture)
  cv::Mat luma;   // CV_8UC1 view of the Y plane (BT.601 limited range, as cv::COLOR_BGR2YUV_I420)
  cv::Mat i420;   // the whole I420 picture luma points into (rows*3/2 x cols)
  uint64_t sequence = 0;     // number of the frame among all decoded since the capture started
  double stream_time_s = 0;  // files: position in the playback (it keeps growing across loops); streams:
                             // seconds since connecting
  std::chrono::steady_clock::time_point decoded_at;
};

// The Y plane of a BGR frame, exactly as cv::cvtColor(COLOR_BGR2YUV_I420) computes it (OpenCV's BGR
// decode does not expose FFmpeg's native yuv420p, so the luma is derived; see docs/benchmarks.md).
// `i420` receives the whole picture (even width/height are needed for chroma; odd sizes are cropped by
// one pixel); the returned view is its first rows.
cv::Mat LumaFromBgr(const cv::Mat& bgr, cv::Mat* i420);

// "rtsp://user:secret@cam/..." -> "rtsp://user:***@cam/..."; also hides password=/pass=/pwd= query values.
std::string RedactUrl(std::string_view url);

// Where frames come from. One real implementation (OpenCV); tests use real servers and files.
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // (Re)opens the input. The error says what failed, on which (redacted) input, and what to do.
  virtual Status Open() = 0;
  // Decodes the next frame without converting it: true, false at the end of a file, or an error.
  virtual StatusOr<bool> Grab() = 0;
  // Converts the last grabbed frame to BGR.
  virtual Status Retrieve(cv::Mat* bgr) = 0;
  virtual void Close() = 0;
  virtual bool is_file() const = 0;
  virtual double native_fps() const = 0;  // 0 when the stream does not say
};

struct FrameSourceOptions {
  std::chrono::milliseconds open_timeout{10000};  // connect + probe
  std::chrono::milliseconds read_timeout{10000};  // a live stream silent this long is dead
};

// The OpenCV implementation: FFmpeg backend (RTSP forced to TCP through OPENCV_FFMPEG_CAPTURE_OPTIONS
// unless the environment already sets it) or V4L2 for /dev/video*. A missing file fails in Open() with
// NotFound.
std::unique_ptr<FrameSource> MakeOpenCvFrameSource(std::string input, FrameSourceOptions options = {});

struct CaptureOptions {
  std::string camera = "camera";  // name used in logs and errors
  double fps = 5;                 // frames handed on per second of stream; <= 0: every frame
  bool loop = false;              // files: start again at the end
  bool realtime_files = true;     // files: decode at the file's own rate (false: as fast as possible)
  // Files: wait until the consumer took the sampled frame instead of replacing it, so every sampled
  // frame is processed (replays, tests, edged-detect). Streams always hand over latest-wins: a camera
  // does not wait for a slow detector.
  bool wait_for_consumer = false;
  uint64_t max_frames = 0;        // end (as a file ends) after decoding this many frames; 0: never
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{30000};

  static CaptureOptions FromConfig(std::string camera, const config::CameraConfig& config);
};

struct CaptureStats {
  uint64_t decoded = 0;     // frames decoded
  uint64_t skipped = 0;     // decoded but not sampled (above the detection fps)
  uint64_t delivered = 0;   // sampled and put in the slot
  uint64_t taken = 0;       // taken by the consumer
  uint64_t dropped = 0;     // replaced in the slot before the consumer took them
  uint64_t reconnects = 0;  // successful opens after the first
  uint64_t failures = 0;    // failed opens and streams that died
  bool up = false;          // connected and decoding
  bool ended = false;       // a file reached its end (no loop) and the thread stopped
  std::string last_error;   // empty while healthy
};

class Capture {
 public:
  Capture(std::unique_ptr<FrameSource> source, CaptureOptions options);
  ~Capture();  // Stop()
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Starts the decode thread (once).
  void Start();
  // Stops and joins the thread; a blocked read returns within the source's read timeout.
  void Stop();

  // The newest sampled frame not yet taken, waiting up to `timeout`; nullopt on timeout, after Stop()
  // or when a file ended. Thread-safe; meant for one consumer.
  std::optional<Frame> Next(std::chrono::milliseconds timeout);

  CaptureStats stats() const;
  const CaptureOptions& options() const { return options_; }

 private:
  void Run(std::stop_token stop);
  void SetError(const Status& status);
  bool SleepFor(std::stop_token& stop, std::chrono::milliseconds d);

  std::unique_ptr<FrameSource> source_;
  const CaptureOptions options_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::optional<Frame> slot_;
  CaptureStats stats_;
  bool stopping_ = false;  // under mu_: wakes Next() for good
  std::jthread thread_;
};

}  // namespace edged::detect
