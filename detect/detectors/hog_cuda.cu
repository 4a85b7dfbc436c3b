// CUDA kernels of the HOG people detector: pyramid resize, gradients, block histograms with L2-Hys
// normalisation, and SVM window scores. Every kernel calls the same math the CPU twin calls
// (hog_math.h), one thread per pixel, block or window, so the GPU finds the windows the CPU finds.
#include <cuda_runtime.h>

#include <string>

#include "detect/detectors/hog_cuda.h"
#include "detect/detectors/hog_math.h"

namespace edged::detect::cuda {
namespace {

std::string CudaError(const char* what, cudaError_t err) {
  return std::string("hog cuda: ") + what + ": " + cudaGetErrorString(err);
}

#define EDGED_RETURN_IF_TEXT(expr)        \
  do {                                     \
    std::string edged_text_ = (expr);      \
    if (!edged_text_.empty()) return edged_text_; \
  } while (false)

#define EDGED_CUDA_RETURN_IF_ERROR(what, expr)       \
  do {                                               \
    cudaError_t edged_err_ = (expr);                 \
    if (edged_err_ != cudaSuccess) return CudaError(what, edged_err_); \
  } while (false)

// Device memory that frees itself and grows on demand.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  std::string Reserve(size_t bytes) {
    if (bytes <= size_) return {};
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = 0;
    EDGED_CUDA_RETURN_IF_ERROR("cudaMalloc", cudaMalloc(&ptr_, bytes));
    size_ = bytes;
    return {};
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

__global__ void ResizeKernel(const uint8_t* src, int src_step, int sw, int sh, uint8_t* dst, int dw, int dh) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= dw || y >= dh) return;
  hog::ResizePixel(src, src_step, sw, sh, dw, dh, x, y, dst + (static_cast<long>(y) * dw + x) * 3);
}

__global__ void GradientKernel(const uint8_t* img, int step, int w, int h, hog::GradBins* grad) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= w || y >= h) return;
  grad[static_cast<long>(y) * w + x] = hog::PixelGradient(img, step, w, h, x, y);
}

__global__ void BlockKernel(const hog::GradBins* grad, int w, int grid_w, int grid_h, float* blocks) {
  const int bx = blockIdx.x * blockDim.x + threadIdx.x;
  const int by = blockIdx.y * blockDim.y + threadIdx.y;
  if (bx >= grid_w || by >= grid_h) return;
  float hist[hog::kBlockHistSize];
  hog::BlockHistogram(grad, w, bx * hog::kBlockStride, by * hog::kBlockStride, hist);
  hog::NormalizeL2Hys(hist);
  float* out = blocks + (static_cast<long>(by) * grid_w + bx) * hog::kBlockHistSize;
  for (int i = 0; i < hog::kBlockHistSize; ++i) out[i] = hist[i];
}

__global__ void WindowKernel(const float* blocks, int grid_w, int nwx, int nwy, const float* svm, float rho,
                             float* scores) {
  const int wx = blockIdx.x * blockDim.x + threadIdx.x;
  const int wy = blockIdx.y * blockDim.y + threadIdx.y;
  if (wx >= nwx || wy >= nwy) return;
  scores[wy * nwx + wx] = hog::WindowScore(blocks, grid_w, wx, wy, svm, rho);
}

dim3 Grid(int w, int h, dim3 block) { return dim3((w + block.x - 1) / block.x, (h + block.y - 1) / block.y); }

}  // namespace

struct HogCuda::Buffers {
  DeviceBuffer svm, src, level, grad, blocks, scores;
  float rho = 0;
  std::vector<float> host_scores;
};

int HogDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

HogCuda::HogCuda(std::unique_ptr<Buffers> buffers) : buffers_(std::move(buffers)) {}
HogCuda::~HogCuda() = default;

std::unique_ptr<HogCuda> HogCuda::Create(const std::vector<float>& svm, std::string* error) {
  if (svm.size() != static_cast<size_t>(hog::kDescriptorSize) + 1) {
    *error = "hog cuda: the SVM needs " + std::to_string(hog::kDescriptorSize + 1) + " floats";
    return nullptr;
  }
  if (HogDeviceCount() <= 0) {
    *error = "hog cuda: no CUDA device";
    return nullptr;
  }
  auto buffers = std::make_unique<Buffers>();
  *error = buffers->svm.Reserve(hog::kDescriptorSize * sizeof(float));
  if (!error->empty()) return nullptr;
  cudaError_t err = cudaMemcpy(buffers->svm.as<float>(), svm.data(), hog::kDescriptorSize * sizeof(float),
                               cudaMemcpyHostToDevice);
  if (err != cudaSuccess) {
    *error = CudaError("upload svm", err);
    return nullptr;
  }
  buffers->rho = svm[hog::kDescriptorSize];
  return std::unique_ptr<HogCuda>(new HogCuda(std::move(buffers)));
}

std::string HogCuda::Detect(const std::uint8_t* bgr, int width, int height, int step, const std::vector<double>& scales,
                       float hit_threshold, std::vector<RawWindow>* out) {
  Buffers& b = *buffers_;
  const size_t src_bytes = static_cast<size_t>(step) * height;
  EDGED_RETURN_IF_TEXT(b.src.Reserve(src_bytes));
  EDGED_CUDA_RETURN_IF_ERROR("upload frame", cudaMemcpy(b.src.as<uint8_t>(), bgr, src_bytes, cudaMemcpyHostToDevice));
  const size_t pixels = static_cast<size_t>(width) * height;
  EDGED_RETURN_IF_TEXT(b.level.Reserve(pixels * 3));
  EDGED_RETURN_IF_TEXT(b.grad.Reserve(pixels * sizeof(hog::GradBins)));
  const dim3 threads(16, 16);
  for (double scale : scales) {
    const int w = hog::ScaledSize(width, scale), h = hog::ScaledSize(height, scale);
    if (w < hog::kWinWidth || h < hog::kWinHeight) continue;
    const uint8_t* img = b.src.as<uint8_t>();
    int img_step = step;
    if (w != width || h != height) {
      ResizeKernel<<<Grid(w, h, threads), threads>>>(b.src.as<uint8_t>(), step, width, height, b.level.as<uint8_t>(), w, h);
      img = b.level.as<uint8_t>();
      img_step = w * 3;
    }
    GradientKernel<<<Grid(w, h, threads), threads>>>(img, img_step, w, h, b.grad.as<hog::GradBins>());
    const int grid_w = (w - hog::kBlock) / hog::kBlockStride + 1, grid_h = (h - hog::kBlock) / hog::kBlockStride + 1;
    EDGED_RETURN_IF_TEXT(b.blocks.Reserve(static_cast<size_t>(grid_w) * grid_h * hog::kBlockHistSize * sizeof(float)));
    BlockKernel<<<Grid(grid_w, grid_h, threads), threads>>>(b.grad.as<hog::GradBins>(), w, grid_w, grid_h,
                                                             b.blocks.as<float>());
    const int nwx = (w - hog::kWinWidth) / hog::kCell + 1, nwy = (h - hog::kWinHeight) / hog::kCell + 1;
    EDGED_RETURN_IF_TEXT(b.scores.Reserve(static_cast<size_t>(nwx) * nwy * sizeof(float)));
    WindowKernel<<<Grid(nwx, nwy, threads), threads>>>(b.blocks.as<float>(), grid_w, nwx, nwy, b.svm.as<float>(), b.rho,
                                                        b.scores.as<float>());
    EDGED_CUDA_RETURN_IF_ERROR("kernels", cudaGetLastError());
    b.host_scores.resize(static_cast<size_t>(nwx) * nwy);
    EDGED_CUDA_RETURN_IF_ERROR("download scores", cudaMemcpy(b.host_scores.data(), b.scores.as<float>(),
                                                             b.host_scores.size() * sizeof(float), cudaMemcpyDeviceToHost));
    const int win_w = hog::RoundEven(hog::kWinWidth * scale), win_h = hog::RoundEven(hog::kWinHeight * scale);
    for (int wy = 0; wy < nwy; ++wy) {
      for (int wx = 0; wx < nwx; ++wx) {
        const float s = b.host_scores[static_cast<size_t>(wy) * nwx + wx];
        if (s < hit_threshold) continue;
        out->push_back({hog::RoundEven(wx * hog::kCell * scale), hog::RoundEven(wy * hog::kCell * scale), win_w, win_h, s});
      }
    }
  }
  return {};
}

}  // namespace edged::detect::cuda
