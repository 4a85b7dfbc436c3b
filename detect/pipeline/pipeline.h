// One camera's per-frame processing, without threads or I/O: motion -> regions -> detector -> tracker.
// Motion is reported only when the detector is not calibrating, and the detector is settled on the
// first picture before the first result, so a still scene reports no motion and runs no detection;
// stationary objects that no motion touches are not searched again (Frigate's stationary interval).
// The camera module (camera_module.h) feeds it decoded frames and publishes what comes out; the
// edged-detect tool feeds it a file and prints it, so users tune a camera with the code that runs it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "base/status.h"
#include "config/config.h"
#include "detect/detectors/detector.h"
#include "detect/tracker/tracker.h"

namespace edged::detect {

class MotionDetector;

struct FrameResult {
  long frame = 0;      // index of the processed frame
  double time = 0;     // frame time, seconds since the epoch
  std::vector<cv::Rect> motion;   // motion boxes (frame coordinates); none while calibrating
  bool calibrating = false;       // the motion detector is settling (start-up, lightning): no motion
  std::vector<cv::Rect> regions;  // where the detector looked (regions::FrameRegions)
  std::vector<Detection> detections;  // after the tracker's filters and cross-region de-duplication,
                                      // with the last detection of each stationary object not searched
  std::vector<TrackerEvent> events;
  double motion_ms = 0;
  double detect_ms = 0;  // all regions together
};

// The JSON line edged-detect prints per frame.
nlohmann::json FrameResultJson(const FrameResult& result);

class CameraPipeline {
 public:
  // `frame_size` is the detect resolution (frames of another size are resized to it). The motion
  // back-end follows the detector's device setting.
  static StatusOr<std::unique_ptr<CameraPipeline>> Create(std::string name, const config::CameraConfig& config,
                                                          std::unique_ptr<Detector> detector, cv::Size frame_size,
                                                          std::uint64_t seed);
  ~CameraPipeline();

  // Processes one BGR frame taken at `time`. `luma` is the frame's BT.601 Y plane (Frame::luma from
  // detect/capture) when the caller has it; empty or of another size, it is computed. Not thread-safe.
  StatusOr<FrameResult> Process(const cv::Mat& bgr, const cv::Mat& luma, double time);
  StatusOr<FrameResult> Process(const cv::Mat& bgr, double time);
  // Ends every tracked object (end of stream, camera stopping).
  std::vector<TrackerEvent> Finish();

  const ObjectTracker& tracker() const { return tracker_; }
  ObjectTracker& tracker() { return tracker_; }
  const Detector& detector() const { return *detector_; }
  // Frames of the first picture fed to the motion detector before the first result (see PrimeMotion).
  int motion_priming_frames() const { return motion_priming_frames_; }
  cv::Size frame_size() const { return frame_size_; }

 private:
  CameraPipeline(std::string name, const config::CameraConfig& config, std::unique_ptr<Detector> detector,
                 std::unique_ptr<MotionDetector> motion, cv::Size frame_size, std::uint64_t seed);

  // Settles the motion detector on the first picture so a still scene starts without motion.
  Status PrimeMotion(const cv::Mat& luma);

  std::string name_;
  config::CameraConfig config_;
  std::unique_ptr<Detector> detector_;
  std::unique_ptr<MotionDetector> motion_;
  cv::Size frame_size_;
  int min_region_;
  ObjectTracker tracker_;
  long frames_ = 0;
  int motion_priming_frames_ = 0;
  int stationary_counter_ = 0;   // frames since stationary objects were last searched
  double last_time_ = -1;        // the previous frame's time
  cv::Mat resized_, luma_, i420_, luma_padded_;
};

}  // namespace edged::detect
