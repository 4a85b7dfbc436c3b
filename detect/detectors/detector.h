// Object detectors behind one interface, chosen per configuration
// (`cameras.detector`):
//   hog  - the HOG people detector with OpenCV's default SVM; on the CPU
//   through OpenCV, on an NVIDIA GPU
//          through edged's own CUDA kernels, which find the same windows
//          (hog_math.h holds the shared math);
//   onnx - a user's ONNX model (YOLOv5, YOLOv8 or SSD-style output) through
//   OpenCV DNN on the CPU.
// `device: auto` picks CUDA when a device exists and falls back to the CPU with
// one log line otherwise.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

#include "base/status.h"
#include "config/config.h"

namespace edged::detect {

struct Detection {
  std::string label; // "person", or a labelmap entry
  float score = 0;   // confidence 0..1
  cv::Rect box;      // frame coordinates

  bool operator==(const Detection &) const = default;
};

enum class Device { kCpu, kCuda };
std::string_view DeviceName(Device device); // "cpu" | "cuda"

class Detector {
public:
  virtual ~Detector() = default;

  virtual std::string_view type() const = 0; // "hog" | "onnx"
  virtual Device device() const = 0;         // where Detect() runs

  // Detects objects inside `region` of the BGR frame (the region is clipped to
  // the frame; an empty region after clipping yields no detections). Boxes come
  // back in frame coordinates. Not thread-safe: each camera owns its detector.
  virtual StatusOr<std::vector<Detection>> Detect(const cv::Mat &bgr,
                                                  const cv::Rect &region) = 0;
};

// Number of usable CUDA devices: 0 in a build without CUDA, without a driver,
// or without a GPU.
int CudaDeviceCount();

// Builds the configured detector. `cuda_devices` is what CudaDeviceCount() says
// (injected so tests can ask for `auto` as if a GPU were there or not).
// device=cuda without a device or without CUDA support is an error; device=auto
// without one logs once and runs on the CPU.
StatusOr<std::unique_ptr<Detector>>
CreateDetector(const config::DetectorConfig &config, int cuda_devices);
inline StatusOr<std::unique_ptr<Detector>>
CreateDetector(const config::DetectorConfig &config) {
  return CreateDetector(config, CudaDeviceCount());
}

} // namespace edged::detect
