// Internals of the HOG detector that tests reach: the raw multi-scale window
// search of each back-end (OpenCV, the own CPU twin, CUDA) before grouping, so
// they can be compared window by window.
#pragma once

#include <memory>
#include <vector>

#include <opencv2/core.hpp>

#include "base/status.h"
#include "detect/detectors/detector.h"

namespace edged::detect::detail {

struct HogWindow {
  cv::Rect box; // in the searched image's coordinates
  double score; // raw SVM margin (rho + w.x)
};

struct HogSearch {
  double hit_threshold = 0; // SVM margin a window needs
  double scale = 1.05;      // pyramid step
  int max_levels = 64;
  int group_threshold =
      2; // grouped detections need more than this many raw windows
};

// OpenCV's pyramid: 1, 1.05, 1.05^2, ... while the scaled image still holds a
// 64x128 window.
std::vector<double> HogPyramidScales(cv::Size image, const HogSearch &search);

// Raw windows (not grouped) of a BGR image, per back-end.
std::vector<HogWindow> HogOpenCvWindows(const cv::Mat &bgr,
                                        const HogSearch &search);
std::vector<HogWindow> HogTwinWindows(const cv::Mat &bgr,
                                      const HogSearch &search);

// The own implementation's 3780-float descriptor of a 64x128 BGR image
// (OpenCV's compute() layout).
std::vector<float> HogTwinDescriptor(const cv::Mat &bgr_window);

// Groups raw windows as OpenCV's detectMultiScale does (similar rectangles, eps
// 0.2, clusters of more than group_threshold windows, small boxes inside big
// ones dropped); score = best in the cluster.
std::vector<HogWindow> GroupHogWindows(const std::vector<HogWindow> &windows,
                                       int group_threshold);

// Which back-end a HOG detector uses.
enum class HogBackend { kOpenCv, kTwin, kCuda };

std::unique_ptr<Detector> MakeHogDetector(HogBackend backend,
                                          const HogSearch &search);

#if EDGED_HAVE_CUDA
// Raw windows through the CUDA kernels; Unavailable when no device can run
// them.
StatusOr<std::vector<HogWindow>> HogCudaWindows(const cv::Mat &bgr,
                                                const HogSearch &search);
#endif

} // namespace edged::detect::detail
