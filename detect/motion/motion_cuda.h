// The CUDA motion engine as nvcc sees it: plain types only (no OpenCV, no Status), so the .cu file
// does not pull host-only headers through nvcc. motion_cuda_pixels.cc adapts it to MotionPixels.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace edged::detect::motion::cuda {

// Number of usable CUDA devices (0 without a driver or a GPU).
int DeviceCount();

class Engine {
 public:
  // Device buffers for a w x h motion frame; `keep` is the w*h mask (0xFF counts, 0 masked).
  // Returns null and sets *error when the device cannot be used.
  static std::unique_ptr<Engine> Create(int w, int h, const uint8_t* keep, int threshold, bool improve_contrast,
                                        std::string* error);
  virtual ~Engine() = default;
  // Pinned host buffer (w*h bytes) the caller fills with the resized luma before Run().
  virtual uint8_t* input() = 0;
  // Histogram, contrast, mask + blur, delta + threshold, dilate. *dilated points at pinned host memory
  // valid until the next Run(). False and *error on a CUDA failure.
  virtual bool Run(const uint8_t** dilated, bool* any, std::string* error) = 0;
  // Queues the running-average update with the last blurred frame.
  virtual bool Accumulate(double alpha, std::string* error) = 0;
  virtual bool CopyBlurred(uint8_t* out, std::string* error) = 0;  // w*h bytes
  virtual bool CopyAverage(float* out, std::string* error) = 0;    // w*h floats
};

}  // namespace edged::detect::motion::cuda
