// The CUDA back-end of the motion pixel stages. The host gathers the nearest-neighbour resize (13k
// pixels at frame_height 100, so 13 KB crosses PCIe instead of the whole luma plane); the device keeps
// the contrast history and the running average and runs histogram, contrast table, mask + blur,
// delta + threshold, dilate and the running-average update with the math of motion_math.h. Compiled
// with --fmad=false so every multiply and add rounds as on the host.
#include <cuda_runtime.h>

#include <cstring>
#include <string>

#include "detect/motion/motion_cuda.h"
#include "detect/motion/motion_math.h"

namespace edged::detect::motion::cuda {
namespace {

bool Fail(const char* what, cudaError_t err, std::string* error) {
  *error = std::string(what) + " failed: " + cudaGetErrorString(err);
  return false;
}

#define EDGED_CUDA_RETURN(what, expr)                                 \
  do {                                                                \
    cudaError_t edged_err_ = (expr);                                  \
    if (edged_err_ != cudaSuccess) return Fail(what, edged_err_, error); \
  } while (false)

__global__ void HistogramKernel(const uint8_t* __restrict__ px, int n, uint32_t* __restrict__ hist) {
  __shared__ uint32_t local[256];
  local[threadIdx.x] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) atomicAdd(&local[px[i]], 1u);
  __syncthreads();
  if (local[threadIdx.x] != 0) atomicAdd(&hist[threadIdx.x], local[threadIdx.x]);
}

// One block of 256 threads: thread 0 runs the history update (ContrastUpdate writes the table too, but
// serially; the threads then recompute their own entry in parallel from the averages it left).
__global__ void ContrastKernel(ContrastState* state, uint32_t* hist, uint32_t n, uint8_t* lut, int improve) {
  __shared__ uint8_t table[256];
  if (threadIdx.x == 0) {
    if (improve) {
      ContrastUpdate(state, hist, n, table);
    } else {
      for (int v = 0; v < 256; ++v) table[v] = static_cast<uint8_t>(v);
    }
  }
  __syncthreads();
  lut[threadIdx.x] = table[threadIdx.x];
  hist[threadIdx.x] = 0;  // ready for the next frame
}

__global__ void StretchBlurColumnsKernel(const uint8_t* __restrict__ resized, const uint8_t* __restrict__ keep,
                                         const uint8_t* __restrict__ lut_global, int w, int h,
                                         uint8_t* __restrict__ out) {
  __shared__ uint8_t lut[256];
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  for (int i = tid; i < 256; i += blockDim.x * blockDim.y) lut[i] = lut_global[i];
  __syncthreads();
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= w || y >= h) return;
  auto stretched = [&](int yy) {
    const int i = yy * w + x;
    return static_cast<int>(lut[resized[i]] & keep[i]);
  };
  out[y * w + x] = BlurTap(stretched(y), stretched(ReflectIndex(y - 1, h)) + stretched(ReflectIndex(y + 1, h)));
}

__global__ void BlurRowsThresholdKernel(const uint8_t* __restrict__ vblur, const float* __restrict__ avg, int w,
                                        int h, int threshold, uint8_t* __restrict__ blurred,
                                        uint8_t* __restrict__ thresh) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= w || y >= h) return;
  const uint8_t* row = vblur + y * w;
  const uint8_t b = BlurTap(row[x], row[ReflectIndex(x - 1, w)] + row[ReflectIndex(x + 1, w)]);
  blurred[y * w + x] = b;
  thresh[y * w + x] = DeltaThreshold(b, avg[y * w + x], threshold);
}

__global__ void DilateKernel(const uint8_t* __restrict__ thresh, int w, int h, uint8_t* __restrict__ out,
                             uint32_t* __restrict__ any) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= w || y >= h) return;
  const int y0 = y > 0 ? y - 1 : y, y1 = y < h - 1 ? y + 1 : y;
  const int x0 = x > 0 ? x - 1 : x, x1 = x < w - 1 ? x + 1 : x;
  auto col = [&](int xx) { return Max3(thresh[y0 * w + xx], thresh[y * w + xx], thresh[y1 * w + xx]); };
  const uint8_t m = Max3(col(x0), col(x), col(x1));
  out[y * w + x] = m;
  if (m) atomicOr(any, 1u);
}

__global__ void AccumulateKernel(const uint8_t* __restrict__ blurred, float* __restrict__ avg, int n, float a,
                                 float b) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) avg[i] = AccumulateWeighted(blurred[i], avg[i], a, b);
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(int w, int h, int threshold, bool improve)
      : w_(w), h_(h), n_(w * h), threshold_(threshold), improve_(improve) {}

  ~EngineImpl() override {
    for (void* p : {static_cast<void*>(d_resized_), static_cast<void*>(d_keep_), static_cast<void*>(d_vblur_),
                    static_cast<void*>(d_blurred_), static_cast<void*>(d_thresh_), static_cast<void*>(d_dilated_),
                    static_cast<void*>(d_avg_), static_cast<void*>(d_hist_), static_cast<void*>(d_lut_),
                    static_cast<void*>(d_state_), static_cast<void*>(d_any_)}) {
      if (p) cudaFree(p);
    }
    if (h_resized_) cudaFreeHost(h_resized_);
    if (h_dilated_) cudaFreeHost(h_dilated_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  bool Init(const uint8_t* keep, std::string* error) {
    EDGED_CUDA_RETURN("cudaStreamCreate", cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_resized_, n_));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_keep_, n_));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_vblur_, n_));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_blurred_, n_));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_thresh_, n_));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_dilated_, n_));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_avg_, n_ * sizeof(float)));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_hist_, 256 * sizeof(uint32_t)));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_lut_, 256));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_state_, sizeof(ContrastState)));
    EDGED_CUDA_RETURN("cudaMalloc", cudaMalloc(&d_any_, sizeof(uint32_t)));
    EDGED_CUDA_RETURN("cudaMallocHost", cudaMallocHost(&h_resized_, n_));
    EDGED_CUDA_RETURN("cudaMallocHost", cudaMallocHost(&h_dilated_, n_ + sizeof(uint32_t)));
    ContrastState state;
    ContrastReset(&state);
    EDGED_CUDA_RETURN("cudaMemcpy", cudaMemcpy(d_state_, &state, sizeof state, cudaMemcpyHostToDevice));
    EDGED_CUDA_RETURN("cudaMemcpy", cudaMemcpy(d_keep_, keep, n_, cudaMemcpyHostToDevice));
    EDGED_CUDA_RETURN("cudaMemset", cudaMemset(d_avg_, 0, n_ * sizeof(float)));
    EDGED_CUDA_RETURN("cudaMemset", cudaMemset(d_hist_, 0, 256 * sizeof(uint32_t)));
    return true;
  }

  uint8_t* input() override { return h_resized_; }

  bool Run(const uint8_t** dilated, bool* any, std::string* error) override {
    EDGED_CUDA_RETURN("upload", cudaMemcpyAsync(d_resized_, h_resized_, n_, cudaMemcpyHostToDevice, stream_));
    EDGED_CUDA_RETURN("cudaMemsetAsync", cudaMemsetAsync(d_any_, 0, sizeof(uint32_t), stream_));
    HistogramKernel<<<8, 256, 0, stream_>>>(d_resized_, n_, d_hist_);
    ContrastKernel<<<1, 256, 0, stream_>>>(d_state_, d_hist_, static_cast<uint32_t>(n_), d_lut_, improve_ ? 1 : 0);
    const dim3 block(32, 8);
    const dim3 grid((w_ + block.x - 1) / block.x, (h_ + block.y - 1) / block.y);
    StretchBlurColumnsKernel<<<grid, block, 0, stream_>>>(d_resized_, d_keep_, d_lut_, w_, h_, d_vblur_);
    BlurRowsThresholdKernel<<<grid, block, 0, stream_>>>(d_vblur_, d_avg_, w_, h_, threshold_, d_blurred_, d_thresh_);
    DilateKernel<<<grid, block, 0, stream_>>>(d_thresh_, w_, h_, d_dilated_, d_any_);
    EDGED_CUDA_RETURN("kernel launch", cudaGetLastError());
    EDGED_CUDA_RETURN("download", cudaMemcpyAsync(h_dilated_, d_dilated_, n_, cudaMemcpyDeviceToHost, stream_));
    EDGED_CUDA_RETURN("download",
                      cudaMemcpyAsync(h_dilated_ + n_, d_any_, sizeof(uint32_t), cudaMemcpyDeviceToHost, stream_));
    EDGED_CUDA_RETURN("cudaStreamSynchronize", cudaStreamSynchronize(stream_));
    uint32_t flag = 0;
    std::memcpy(&flag, h_dilated_ + n_, sizeof flag);
    *any = flag != 0;
    *dilated = h_dilated_;
    return true;
  }

  bool Accumulate(double alpha, std::string* error) override {
    // Queued behind this frame's kernels; the next Run() on the same stream sees the new average.
    AccumulateKernel<<<(n_ + 255) / 256, 256, 0, stream_>>>(d_blurred_, d_avg_, n_, static_cast<float>(alpha),
                                                            static_cast<float>(1.0 - alpha));
    EDGED_CUDA_RETURN("kernel launch", cudaGetLastError());
    return true;
  }

  bool CopyBlurred(uint8_t* out, std::string* error) override {
    EDGED_CUDA_RETURN("cudaStreamSynchronize", cudaStreamSynchronize(stream_));
    EDGED_CUDA_RETURN("cudaMemcpy", cudaMemcpy(out, d_blurred_, n_, cudaMemcpyDeviceToHost));
    return true;
  }

  bool CopyAverage(float* out, std::string* error) override {
    EDGED_CUDA_RETURN("cudaStreamSynchronize", cudaStreamSynchronize(stream_));
    EDGED_CUDA_RETURN("cudaMemcpy", cudaMemcpy(out, d_avg_, n_ * sizeof(float), cudaMemcpyDeviceToHost));
    return true;
  }

 private:
  int w_, h_, n_, threshold_;
  bool improve_;
  cudaStream_t stream_ = nullptr;
  uint8_t *d_resized_ = nullptr, *d_keep_ = nullptr, *d_vblur_ = nullptr, *d_blurred_ = nullptr,
          *d_thresh_ = nullptr, *d_dilated_ = nullptr, *d_lut_ = nullptr;
  float* d_avg_ = nullptr;
  uint32_t *d_hist_ = nullptr, *d_any_ = nullptr;
  ContrastState* d_state_ = nullptr;
  uint8_t *h_resized_ = nullptr, *h_dilated_ = nullptr;
};

}  // namespace

int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the "no driver" error so later calls start clean
    return 0;
  }
  return count;
}

std::unique_ptr<Engine> Engine::Create(int w, int h, const uint8_t* keep, int threshold, bool improve_contrast,
                                       std::string* error) {
  if (DeviceCount() == 0) {
    *error = "no CUDA device is usable";
    return nullptr;
  }
  auto engine = std::make_unique<EngineImpl>(w, h, threshold, improve_contrast);
  if (!engine->Init(keep, error)) return nullptr;
  return engine;
}

}  // namespace edged::detect::motion::cuda
