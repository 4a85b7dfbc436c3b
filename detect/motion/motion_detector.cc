// MotionDetector: the frame-level state machine of Frigate's ImprovedMotionDetector (calibration,
// lightning, when the running average absorbs a frame) around a pixel back-end, and the contour step.
#include "detect/motion/motion_detector.h"

#include <exception>
#include <utility>

#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include "detect/motion/motion_internal.h"
#include "detect/motion/motion_math.h"

namespace edged::detect {

namespace detail {

StatusOr<MotionGeometry> MakeMotionGeometry(cv::Size frame, const config::MotionConfig& config) {
  if (frame.width < 1 || frame.height < 1) {
    return InvalidArgumentError(fmt::format("motion: frame size {}x{} is empty", frame.width, frame.height));
  }
  const int fh = config.frame_height > 0 ? config.frame_height : frame.height;
  if (fh > frame.height) {
    return InvalidArgumentError(
        fmt::format("motion.frame_height {} is larger than the frame height {}; use at most {} (default 100)", fh,
                    frame.height, frame.height));
  }
  const int fw = static_cast<int>(static_cast<int64_t>(fh) * frame.width / frame.height);
  if (fw < 1) {
    return InvalidArgumentError(fmt::format("motion.frame_height {} makes the {}x{} frame 0 pixels wide; raise it",
                                            fh, frame.width, frame.height));
  }
  if (config.threshold < 1 || config.threshold > 255) {
    return InvalidArgumentError(fmt::format("motion.threshold {} is outside 1..255", config.threshold));
  }
  MotionGeometry g;
  g.frame = frame;
  g.motion = cv::Size(fw, fh);
  g.threshold = config.threshold;
  g.improve_contrast = config.improve_contrast;
  // OpenCV's resize computes the inverse scale as 1 / (dst / src).
  const double inv_x = 1.0 / (static_cast<double>(fw) / frame.width);
  const double inv_y = 1.0 / (static_cast<double>(fh) / frame.height);
  g.src_x.resize(fw);
  g.src_y.resize(fh);
  for (int x = 0; x < fw; ++x) g.src_x[x] = motion::NearestIndex(x, inv_x, frame.width);
  for (int y = 0; y < fh; ++y) g.src_y[y] = motion::NearestIndex(y, inv_y, frame.height);

  g.keep.assign(static_cast<size_t>(g.motion.area()), 0xFF);
  if (!config.mask.empty()) {
    cv::Mat full(frame, CV_8UC1, cv::Scalar(255));
    std::vector<std::vector<cv::Point>> polys;
    for (size_t i = 0; i < config.mask.size(); ++i) {
      const auto& poly = config.mask[i];
      if (poly.size() < 3) {
        return InvalidArgumentError(fmt::format(
            "motion.mask[{}] has {} points; a mask polygon needs at least 3 (x,y pixel pairs)", i, poly.size()));
      }
      std::vector<cv::Point> pts;
      for (const auto& p : poly) pts.emplace_back(static_cast<int>(p.x), static_cast<int>(p.y));  // int() as Frigate
      polys.push_back(std::move(pts));
    }
    cv::fillPoly(full, polys, cv::Scalar(0));
    cv::Mat small;
    cv::resize(full, small, g.motion, 0, 0, cv::INTER_AREA);
    for (int y = 0; y < fh; ++y) {
      for (int x = 0; x < fw; ++x) {
        if (small.at<uint8_t>(y, x) == 0) g.keep[static_cast<size_t>(y) * fw + x] = 0;
      }
    }
  }
  return g;
}

}  // namespace detail

bool CudaMotionAvailable() {
#if defined(EDGED_HAVE_CUDA)
  return detail::CudaMotionDeviceCount() > 0;
#else
  return false;
#endif
}

StatusOr<std::unique_ptr<MotionDetector>> MotionDetector::Create(cv::Size frame_size,
                                                                 const config::MotionConfig& config,
                                                                 MotionBackend backend) {
  try {
    ASSIGN_OR_RETURN(detail::MotionGeometry g, detail::MakeMotionGeometry(frame_size, config));
    const cv::Size motion_size = g.motion;
    std::unique_ptr<detail::MotionPixels> pixels;
    if (backend == MotionBackend::kCuda) {
#if defined(EDGED_HAVE_CUDA)
      ASSIGN_OR_RETURN(pixels, detail::MakeCudaMotionPixels(std::move(g)));
#else
      return UnavailableError("motion: this edged was built without CUDA; use the CPU back-end");
#endif
    } else {
      pixels = detail::MakeCpuMotionPixels(std::move(g));
    }
    return std::unique_ptr<MotionDetector>(
        new MotionDetector(frame_size, motion_size, config, backend, std::move(pixels)));
  } catch (const std::exception& e) {
    return InternalError(fmt::format("motion: setting up the detector failed: {}", e.what()));
  }
}

MotionDetector::MotionDetector(cv::Size frame_size, cv::Size motion_size, const config::MotionConfig& config,
                               MotionBackend backend, std::unique_ptr<detail::MotionPixels> pixels)
    : frame_size_(frame_size),
      motion_size_(motion_size),
      config_(config),
      backend_(backend),
      resize_factor_(static_cast<double>(frame_size.height) / motion_size.height),
      pixels_(std::move(pixels)) {}

MotionDetector::~MotionDetector() = default;

StatusOr<std::span<const cv::Rect>> MotionDetector::Detect(const cv::Mat& luma) {
  if (luma.type() != CV_8UC1 || luma.size() != frame_size_) {
    return InvalidArgumentError(fmt::format("motion: expected a {}x{} 8-bit luma frame, got {}x{} type {}",
                                            frame_size_.width, frame_size_.height, luma.cols, luma.rows,
                                            luma.type()));
  }
  boxes_.clear();
  last_lightning_ = false;
  double total_area = 0;
  try {
    bool any = false;
    ASSIGN_OR_RETURN(const uint8_t* dilated, pixels_->Run(luma, &any));
    mask_ = cv::Mat(motion_size_, CV_8UC1, const_cast<uint8_t*>(dilated));
    if (any) {
      // Contours of an all-zero mask are empty: skipping the call keeps still scenes cheap.
      cv::findContours(mask_, contours_, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
      for (const auto& c : contours_) {
        const double area = cv::contourArea(c);
        total_area += area;
        if (area > config_.contour_area) {
          const cv::Rect r = cv::boundingRect(c);
          const int x1 = static_cast<int>(r.x * resize_factor_);
          const int y1 = static_cast<int>(r.y * resize_factor_);
          const int x2 = static_cast<int>((r.x + r.width) * resize_factor_);
          const int y2 = static_cast<int>((r.y + r.height) * resize_factor_);
          boxes_.emplace_back(x1, y1, x2 - x1, y2 - y1);
        }
      }
    }
    last_fraction_ = total_area / (static_cast<double>(motion_size_.width) * motion_size_.height);

    // Frigate: settled once under 5% moves in at most 4 boxes; calibrating again when the frame looks
    // like lightning. The running average only takes in a moving frame after 10 moving frames in a row.
    if (last_fraction_ < 0.05 && boxes_.size() <= 4) calibrating_ = false;
    last_lightning_ = last_fraction_ > config_.lightning_threshold;
    if (calibrating_ || last_lightning_) calibrating_ = true;
    const double alpha = calibrating_ ? motion::kCalibrationAlpha : config_.frame_alpha;
    if (!boxes_.empty()) {
      ++motion_frame_count_;
      if (motion_frame_count_ >= motion::kMotionFramesBeforeAbsorb) RETURN_IF_ERROR(pixels_->Accumulate(alpha));
    } else {
      RETURN_IF_ERROR(pixels_->Accumulate(alpha));
      motion_frame_count_ = 0;
    }
  } catch (const std::exception& e) {
    return InternalError(fmt::format("motion: frame failed: {}", e.what()));
  }
  if (last_lightning_) return std::span<const cv::Rect>();
  return std::span<const cv::Rect>(boxes_);
}

}  // namespace edged::detect
