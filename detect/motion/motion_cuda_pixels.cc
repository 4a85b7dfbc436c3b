// MotionPixels on the CUDA engine: the host gathers the nearest-neighbour resize into the engine's
// pinned buffer, the device does the rest (motion_cuda.cu).
#include <utility>

#include <fmt/format.h>

#include "detect/motion/motion_cuda.h"
#include "detect/motion/motion_internal.h"

namespace edged::detect::detail {
namespace {

Status CudaFailure(const std::string& error) {
  return InternalError(fmt::format("motion (cuda): {}; check the NVIDIA driver, or run motion on the CPU", error));
}

class CudaMotionPixels final : public MotionPixels {
 public:
  CudaMotionPixels(MotionGeometry g, std::unique_ptr<motion::cuda::Engine> engine)
      : g_(std::move(g)), engine_(std::move(engine)) {}

  StatusOr<const uint8_t*> Run(const cv::Mat& luma, bool* any) override {
    const int w = g_.motion.width, h = g_.motion.height;
    uint8_t* in = engine_->input();
    for (int y = 0; y < h; ++y) {
      const uint8_t* src = luma.ptr<uint8_t>(g_.src_y[y]);
      uint8_t* dst = in + static_cast<size_t>(y) * w;
      for (int x = 0; x < w; ++x) dst[x] = src[g_.src_x[x]];
    }
    const uint8_t* dilated = nullptr;
    std::string error;
    if (!engine_->Run(&dilated, any, &error)) return CudaFailure(error);
    return dilated;
  }

  Status Accumulate(double alpha) override {
    std::string error;
    if (!engine_->Accumulate(alpha, &error)) return CudaFailure(error);
    return OkStatus();
  }

  cv::Mat Blurred() override {
    cv::Mat m(g_.motion, CV_8UC1, cv::Scalar(0));
    std::string error;
    if (!engine_->CopyBlurred(m.data, &error)) return cv::Mat();
    return m;
  }
  cv::Mat Average() override {
    cv::Mat m(g_.motion, CV_32FC1, cv::Scalar(0));
    std::string error;
    if (!engine_->CopyAverage(m.ptr<float>(), &error)) return cv::Mat();
    return m;
  }

 private:
  MotionGeometry g_;
  std::unique_ptr<motion::cuda::Engine> engine_;
};

}  // namespace

int CudaMotionDeviceCount() { return motion::cuda::DeviceCount(); }

StatusOr<std::unique_ptr<MotionPixels>> MakeCudaMotionPixels(MotionGeometry geometry) {
  std::string error;
  auto engine = motion::cuda::Engine::Create(geometry.motion.width, geometry.motion.height, geometry.keep.data(),
                                             geometry.threshold, geometry.improve_contrast, &error);
  if (!engine) {
    return UnavailableError(fmt::format("motion (cuda): {}; run motion on the CPU (device: cpu)", error));
  }
  return std::unique_ptr<MotionPixels>(std::make_unique<CudaMotionPixels>(std::move(geometry), std::move(engine)));
}

}  // namespace edged::detect::detail
