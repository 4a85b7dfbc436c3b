// Motion detection on a camera's luma plane: Frigate's ImprovedMotionDetector reimplemented
// (frigate/motion/improved_motion.py). Per frame: nearest-neighbour resize to `frame_height`, contrast
// stretch from a rolling 4th/96th percentile history of 50 frames, config masks, a 3-tap Gaussian,
// delta against a running average, threshold, 3x3 dilate, external contours above `contour_area`,
// boxes scaled back to the frame. A frame whose contours cover more than `lightning_threshold` of the
// picture (lightning, IR switch) puts the detector back into calibration and, unlike Frigate's detect()
// which returns them and lets the caller ignore them, yields no boxes: a flash never reads as motion.
// While calibrating the boxes are returned (as Frigate does); callers should not start regions from them.
//
// Two back-ends give one result: the CPU path and own CUDA kernels share the per-pixel math
// (motion_math.h); contours are found on the CPU for both.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include <opencv2/core.hpp>

#include "base/status.h"
#include "config/config.h"

namespace edged::detect {

enum class MotionBackend { kCpu, kCuda };

// True when this build has the CUDA motion kernels and a CUDA device is usable.
bool CudaMotionAvailable();

namespace detail {
class MotionPixels;
}

class MotionDetector {
 public:
  // A detector for luma frames of `frame_size` (the detect resolution). Fails on a bad configuration
  // (frame_height < 1 or larger than the frame, a mask polygon with fewer than 3 points) and, for
  // kCuda, when CudaMotionAvailable() is false.
  static StatusOr<std::unique_ptr<MotionDetector>> Create(cv::Size frame_size, const config::MotionConfig& config,
                                                          MotionBackend backend = MotionBackend::kCpu);
  ~MotionDetector();
  MotionDetector(const MotionDetector&) = delete;
  MotionDetector& operator=(const MotionDetector&) = delete;

  // Runs one frame. `luma` is CV_8UC1 of frame_size (any row stride), e.g. Frame::luma. Returns the
  // motion boxes in frame coordinates as cv::Rect{x1, y1, x2 - x1, y2 - y1}, in contour order; the span
  // stays valid until the next call. Not thread-safe: one detector per camera, one thread.
  StatusOr<std::span<const cv::Rect>> Detect(const cv::Mat& luma);

  // True until the scene settles (fewer than 5% of pixels and at most 4 boxes moving), and again after
  // a lightning-like frame. Frigate ignores motion boxes for regions while this is true.
  bool calibrating() const { return calibrating_; }
  // True when the last frame's contours covered more than lightning_threshold (its boxes were dropped).
  bool last_was_lightning() const { return last_lightning_; }
  // Fraction of the motion frame covered by contours in the last Detect() (0..1).
  double last_motion_fraction() const { return last_fraction_; }
  // The last dilated threshold mask (CV_8UC1, motion_size(), 0 or 255): for debugging and tests.
  const cv::Mat& last_mask() const { return mask_; }
  cv::Size frame_size() const { return frame_size_; }
  cv::Size motion_size() const { return motion_size_; }
  MotionBackend backend() const { return backend_; }

 private:
  MotionDetector(cv::Size frame_size, cv::Size motion_size, const config::MotionConfig& config,
                 MotionBackend backend, std::unique_ptr<detail::MotionPixels> pixels);

  cv::Size frame_size_;
  cv::Size motion_size_;
  config::MotionConfig config_;
  MotionBackend backend_;
  double resize_factor_;
  std::unique_ptr<detail::MotionPixels> pixels_;
  cv::Mat mask_;  // wraps the back-end's dilated mask buffer
  std::vector<std::vector<cv::Point>> contours_;
  std::vector<cv::Rect> boxes_;
  bool calibrating_ = true;
  int motion_frame_count_ = 0;
  double last_fraction_ = 0;
  bool last_lightning_ = false;
};

}  // namespace edged::detect
