// Detector factory: picks the type and the device from the configuration.
#include "detect/detectors/detector.h"

#include "base/logging.h"
#include "detect/detectors/hog_internal.h"
#include "detect/detectors/onnx_internal.h"
#if EDGED_HAVE_CUDA
#include "detect/detectors/hog_cuda.h"
#endif

namespace edged::detect {
namespace {
#if EDGED_HAVE_CUDA
constexpr bool kBuiltWithCuda = true;
#else
constexpr bool kBuiltWithCuda = false;
#endif
} // namespace

std::string_view DeviceName(Device device) {
  return device == Device::kCuda ? "cuda" : "cpu";
}

int CudaDeviceCount() {
#if EDGED_HAVE_CUDA
  return cuda::HogDeviceCount();
#else
  return 0;
#endif
}

StatusOr<std::unique_ptr<Detector>>
CreateDetector(const config::DetectorConfig &config, int cuda_devices) {
  const std::string &device = config.device;
  if (device != "auto" && device != "cuda" && device != "cpu") {
    return InvalidArgumentError("cameras.detector.device: '" + device +
                                "' is not one of auto, cuda, cpu");
  }
  if (config.type == "hog") {
    bool use_cuda = false;
    if (device == "cuda") {
      if (!kBuiltWithCuda) {
        return FailedPreconditionError(
            "cameras.detector.device is cuda, but this edged was built without "
            "CUDA; use device: auto or cpu");
      }
      if (cuda_devices <= 0) {
        return FailedPreconditionError(
            "cameras.detector.device is cuda, but no CUDA device was found "
            "(driver loaded? device plugin?); "
            "use device: auto to fall back to the CPU");
      }
      use_cuda = true;
    } else if (device == "auto") {
      use_cuda = kBuiltWithCuda && cuda_devices > 0;
      if (!use_cuda) {
        Logger("detect")->info(
            "detector hog: no usable CUDA device ({}), running on the CPU",
            kBuiltWithCuda ? "none found" : "built without CUDA");
      }
    }
    return detail::MakeHogDetector(use_cuda ? detail::HogBackend::kCuda
                                            : detail::HogBackend::kOpenCv,
                                   detail::HogSearch{});
  }
  if (config.type == "onnx") {
    if (device == "cuda") {
      return FailedPreconditionError(
          "cameras.detector: onnx models run through OpenCV DNN on the CPU "
          "only; use device: auto or cpu");
    }
    if (device == "auto")
      Logger("detect")->info("detector onnx: running on the CPU (OpenCV DNN)");
    return detail::CreateOnnxDetector(config);
  }
  return InvalidArgumentError("cameras.detector.type: '" + config.type +
                              "' is not one of hog, onnx");
}

} // namespace edged::detect
