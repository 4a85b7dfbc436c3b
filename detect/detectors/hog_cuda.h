// The CUDA HOG back-end's host interface. Plain types only, so hog_cuda.cu
// needs no OpenCV and the C++ side needs no CUDA headers; errors come back as
// text (nvcc rejects base/status.h's [[nodiscard]] class under -Werror), which
// hog.cc turns into a Status. Compiled only when EDGED_HAVE_CUDA.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edged::detect::cuda {

// Usable devices; 0 when the driver or a device is missing.
int HogDeviceCount();

struct RawWindow {
  int x, y, width, height; // in the searched image's coordinates
  float score;
};

// Device buffers and the SVM, kept across frames. Not thread-safe.
class HogCuda {
public:
  // `svm` holds hog::kDescriptorSize weights followed by the bias.
  // nullptr and `error` set when no device can run it.
  static std::unique_ptr<HogCuda> Create(const std::vector<float> &svm,
                                         std::string *error);
  ~HogCuda();
  HogCuda(const HogCuda &) = delete;
  HogCuda &operator=(const HogCuda &) = delete;

  // Searches every pyramid level `scales` of the interleaved BGR image; appends
  // windows whose score reaches hit_threshold. Returns "" on success, otherwise
  // what failed.
  std::string Detect(const std::uint8_t *bgr, int width, int height, int step,
                     const std::vector<double> &scales, float hit_threshold,
                     std::vector<RawWindow> *out);

  struct Buffers;

private:
  explicit HogCuda(std::unique_ptr<Buffers> buffers);
  std::unique_ptr<Buffers> buffers_;
};

} // namespace edged::detect::cuda
