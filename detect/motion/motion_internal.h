// The pixel stages of MotionDetector behind one small interface, with a CPU and a CUDA back-end.
// Exposed for tests and benchmarks only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <opencv2/core.hpp>

#include "base/status.h"
#include "config/config.h"

namespace edged::detect::detail {

// What both back-ends need to know about a camera, computed once.
struct MotionGeometry {
  cv::Size frame;                 // luma size
  cv::Size motion;                // after resize (width = frame_height * W / H)
  std::vector<int32_t> src_x;     // INTER_NEAREST source column of each motion column
  std::vector<int32_t> src_y;     // ... source row of each motion row
  std::vector<uint8_t> keep;      // motion-size mask: 0xFF where motion counts, 0 where masked
  int threshold = 30;
  bool improve_contrast = true;
};

// Builds the geometry, rasterising the config's mask polygons at frame size and shrinking them with
// INTER_AREA as Frigate does (a motion pixel is masked only where the shrunk mask is exactly 0).
StatusOr<MotionGeometry> MakeMotionGeometry(cv::Size frame, const config::MotionConfig& config);

class MotionPixels {
 public:
  virtual ~MotionPixels() = default;
  // Resize, contrast stretch, mask, blur, delta against the running average, threshold and dilate.
  // Returns the dilated mask (motion size, contiguous, 0/255) in host memory owned by the back-end,
  // valid until the next call; *any is true when some pixel is set.
  virtual StatusOr<const uint8_t*> Run(const cv::Mat& luma, bool* any) = 0;
  // Absorbs the last blurred frame into the running average with weight `alpha`.
  virtual Status Accumulate(double alpha) = 0;
  // The last blurred frame and the running average, copied to the host (tests).
  virtual cv::Mat Blurred() = 0;
  virtual cv::Mat Average() = 0;
};

std::unique_ptr<MotionPixels> MakeCpuMotionPixels(MotionGeometry geometry);
#if defined(EDGED_HAVE_CUDA)
StatusOr<std::unique_ptr<MotionPixels>> MakeCudaMotionPixels(MotionGeometry geometry);
int CudaMotionDeviceCount();
#endif

}  // namespace edged::detect::detail
