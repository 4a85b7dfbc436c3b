#include "detect/pipeline/pipeline.h"

#include <algorithm>
#include <chrono>

#include <opencv2/imgproc.hpp>

#include "detect/capture/capture.h"
#include "detect/motion/motion_detector.h"
#include "detect/regions/regions.h"

namespace edged::detect {
namespace {

double Ms(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

nlohmann::json RectJson(const cv::Rect& r) { return {r.x, r.y, r.x + r.width, r.y + r.height}; }

}  // namespace

nlohmann::json FrameResultJson(const FrameResult& r) {
  nlohmann::json j;
  j["frame"] = r.frame;
  j["time"] = r.time;
  j["calibrating"] = r.calibrating;
  j["motion"] = nlohmann::json::array();
  for (const auto& m : r.motion) j["motion"].push_back(RectJson(m));
  j["regions"] = nlohmann::json::array();
  for (const auto& g : r.regions) j["regions"].push_back(RectJson(g));
  j["detections"] = nlohmann::json::array();
  for (const auto& d : r.detections) {
    j["detections"].push_back({{"label", d.label}, {"score", std::round(d.score * 1e4) / 1e4}, {"box", RectJson(d.box)}});
  }
  j["events"] = nlohmann::json::array();
  for (const auto& e : r.events) {
    j["events"].push_back({{"type", std::string(EventTypeName(e.type))},
                           {"id", e.after.id},
                           {"label", e.after.label},
                           {"box", RectJson(e.after.box)},
                           {"top_score", std::round(e.after.top_score * 1e4) / 1e4},
                           {"current_zones", e.after.current_zones}});
  }
  j["motion_ms"] = std::round(r.motion_ms * 1000) / 1000;
  j["detect_ms"] = std::round(r.detect_ms * 1000) / 1000;
  return j;
}

CameraPipeline::CameraPipeline(std::string name, const config::CameraConfig& config, std::unique_ptr<Detector> detector,
                               std::unique_ptr<MotionDetector> motion, cv::Size frame_size, std::uint64_t seed)
    : name_(name),
      config_(config),
      detector_(std::move(detector)),
      motion_(std::move(motion)),
      frame_size_(frame_size),
      // Frigate's smallest region for its default 320x320 model input, at most the frame.
      min_region_(std::min({regions::MinRegionSize(320, 320), frame_size.width, frame_size.height})),
      tracker_(std::move(name), config, TrackerOptions{.frame_size = frame_size}, seed) {}

CameraPipeline::~CameraPipeline() = default;

StatusOr<std::unique_ptr<CameraPipeline>> CameraPipeline::Create(std::string name, const config::CameraConfig& config,
                                                                 std::unique_ptr<Detector> detector, cv::Size frame_size,
                                                                 std::uint64_t seed) {
  if (detector == nullptr) return InvalidArgumentError("camera " + name + ": no detector");
  if (frame_size.width < 16 || frame_size.height < 16) {
    return InvalidArgumentError("camera " + name + ": frame size " + std::to_string(frame_size.width) + "x" +
                                std::to_string(frame_size.height) + " is too small to detect in");
  }
  // Motion runs where the detector runs: a CUDA detector means a GPU is there for motion too.
  const MotionBackend backend =
      detector->device() == Device::kCuda && CudaMotionAvailable() ? MotionBackend::kCuda : MotionBackend::kCpu;
  auto motion = MotionDetector::Create(frame_size, config.motion, backend);
  if (!motion.ok()) return motion.status().WithContext("camera " + name + ": motion");
  return std::unique_ptr<CameraPipeline>(
      new CameraPipeline(std::move(name), config, std::move(detector), std::move(*motion), frame_size, seed));
}

StatusOr<FrameResult> CameraPipeline::Process(const cv::Mat& bgr, double time) { return Process(bgr, cv::Mat(), time); }

StatusOr<FrameResult> CameraPipeline::Process(const cv::Mat& bgr, const cv::Mat& luma, double time) {
  if (bgr.empty() || bgr.type() != CV_8UC3) return InvalidArgumentError("camera " + name_ + ": expected a BGR frame");
  const cv::Mat* frame = &bgr;
  const cv::Mat* y = &luma;
  if (bgr.size() != frame_size_) {
    cv::resize(bgr, resized_, frame_size_, 0, 0, cv::INTER_AREA);
    frame = &resized_;
  }
  FrameResult r;
  r.frame = frames_++;
  r.time = time;
  const auto t0 = std::chrono::steady_clock::now();
  if (y->empty() || y->size() != frame_size_ || y->type() != CV_8UC1) {
    // The capture's Y plane when it fits, else the same BT.601 luma Frigate's motion sees in yuv420p.
    luma_ = LumaFromBgr(*frame, &i420_);
    if (luma_.size() != frame_size_) {
      // I420 needs even sides: an odd last row or column repeats its neighbour.
      cv::copyMakeBorder(luma_, luma_padded_, 0, frame_size_.height - luma_.rows, 0, frame_size_.width - luma_.cols,
                         cv::BORDER_REPLICATE);
      luma_ = luma_padded_;
    }
    y = &luma_;
  }
  if (motion_priming_frames_ == 0) {
    Status primed = PrimeMotion(*y);
    if (!primed.ok()) return primed.WithContext("camera " + name_ + ": motion");
  }
  auto boxes = motion_->Detect(*y);
  if (!boxes.ok()) return boxes.status().WithContext("camera " + name_ + ": motion");
  r.calibrating = motion_->calibrating();
  // While the detector calibrates (after lightning, an IR switch) its boxes are the background settling,
  // not things moving: Frigate starts no regions from them, and the pipeline does not report them.
  if (!r.calibrating) r.motion.assign(boxes->begin(), boxes->end());
  const auto t1 = std::chrono::steady_clock::now();
  r.motion_ms = Ms(t1 - t0);

  // Frigate (video/detect.py): a stationary object seen on the last frame and touched by no motion is
  // not searched again, except on every (kStationaryInterval + 1)th frame; its last detection stands
  // in for it, so the tracker keeps it. A still scene with people standing costs no detector runs.
  constexpr int kStationaryInterval = 50;  // Frigate's detect.stationary.interval default
  const bool check_stationary = stationary_counter_ == kStationaryInterval;
  stationary_counter_ = check_stationary ? 0 : stationary_counter_ + 1;
  std::vector<cv::Rect> objects;
  std::vector<RegionDetection> found;
  for (const auto& o : tracker_.Objects()) {
    if (!check_stationary && o.stationary && o.frame_time == last_time_ && !regions::IntersectsAny(o.box, r.motion)) {
      found.push_back({Detection{o.label, o.score, o.box}, o.region});
    } else {
      objects.push_back(o.box);
    }
  }
  last_time_ = time;
  r.regions = regions::FrameRegions(frame_size_, min_region_, objects, r.motion, r.calibrating);

  for (const cv::Rect& region : r.regions) {
    auto dets = detector_->Detect(*frame, region);
    if (!dets.ok()) return dets.status().WithContext("camera " + name_ + ": detector");
    for (auto& d : *dets) {
      // HOG windows can reach past the frame; Frigate clips boxes to it, so regions built around
      // tracked objects never grow beyond what is there.
      d.box &= cv::Rect(cv::Point(0, 0), frame_size_);
      if (d.box.empty() || !tracker_.Accepts(d)) continue;
      // The same object seen from two overlapping regions counts once, with its best score.
      bool duplicate = false;
      for (auto& f : found) {
        if (f.detection.label == d.label && regions::Iou(f.detection.box, d.box) > 0.5) {
          if (d.score > f.detection.score) f = {d, region};
          duplicate = true;
          break;
        }
      }
      if (!duplicate) found.push_back({d, region});
    }
  }
  r.detect_ms = Ms(std::chrono::steady_clock::now() - t1);
  for (const auto& f : found) r.detections.push_back(f.detection);
  r.events = tracker_.Update(time, found);
  return r;
}

Status CameraPipeline::PrimeMotion(const cv::Mat& luma) {
  // Frigate's detector starts from an all-zero average and a contrast history of [0, 255] x 50. Its
  // calibration (fast average) ends after ~18 frames, while the history is still filling, and then the
  // average catches up at frame_alpha: Frigate reports motion on a perfectly still picture for about
  // 100 frames after start (frames ~19-115 on vtest.avi's frame 60). Feeding the first picture until
  // the history is full and a frame shows no motion starts the camera settled, with the detector's
  // math untouched. The first picture becomes the background, as calibration would make it.
  constexpr int kContrastHistory = 50;  // improved_motion.py contrast_frame_history
  constexpr int kMaxPriming = 400;      // ~40 ms of motion at frame_height 100; a still picture needs ~120
  while (motion_priming_frames_ < kMaxPriming) {
    auto boxes = motion_->Detect(luma);
    if (!boxes.ok()) return boxes.status();
    ++motion_priming_frames_;
    if (motion_priming_frames_ >= kContrastHistory && !motion_->calibrating() && boxes->empty()) break;
  }
  return OkStatus();
}

std::vector<TrackerEvent> CameraPipeline::Finish() { return tracker_.EndAll(); }

}  // namespace edged::detect
