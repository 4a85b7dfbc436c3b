// The CPU back-end of the motion pixel stages: plain loops over motion_math.h, all buffers allocated
// once. At frame_height 100 a frame is ~13k pixels, so the whole pass stays in L1/L2; the loops are
// written so the compiler can vectorise them (built with -O3, see CMakeLists.txt).
#include <algorithm>
#include <cstring>

#include "detect/motion/motion_internal.h"
#include "detect/motion/motion_math.h"

namespace edged::detect::detail {
namespace {

using namespace edged::detect::motion;

// The loops below are compiled twice (AVX2 and the x86-64 baseline) and picked at load time; the
// math is motion_math.h's either way. -ffp-contract=off (CMakeLists.txt) keeps a*b+c two roundings.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EDGED_CLONES __attribute__((target_clones("avx2", "default")))
#define EDGED_HAVE_FMA_PATH 1
#else
#define EDGED_CLONES
#endif

EDGED_CLONES void ApplyTable(const uint8_t* __restrict__ in, const uint8_t* __restrict__ keep,
                             const uint8_t* __restrict__ lut, uint8_t* __restrict__ out, int n) {
  for (int i = 0; i < n; ++i) out[i] = lut[in[i]] & keep[i];
}

// scipy's axis 0: each pixel with the ones above and below (reflected at the edges).
EDGED_CLONES void BlurColumns(const uint8_t* __restrict__ in, uint8_t* __restrict__ out, int w, int h) {
  for (int y = 0; y < h; ++y) {
    const uint8_t* up = in + static_cast<size_t>(ReflectIndex(y - 1, h)) * w;
    const uint8_t* mid = in + static_cast<size_t>(y) * w;
    const uint8_t* dn = in + static_cast<size_t>(ReflectIndex(y + 1, h)) * w;
    uint8_t* o = out + static_cast<size_t>(y) * w;
    for (int x = 0; x < w; ++x) o[x] = BlurTap(mid[x], up[x] + dn[x]);
  }
}

// scipy's axis 1.
EDGED_CLONES void BlurRows(const uint8_t* __restrict__ in, uint8_t* __restrict__ out, int w, int h) {
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = in + static_cast<size_t>(y) * w;
    uint8_t* o = out + static_cast<size_t>(y) * w;
    o[0] = BlurTap(row[0], row[0] + row[w > 1 ? 1 : 0]);
    for (int x = 1; x < w - 1; ++x) o[x] = BlurTap(row[x], row[x - 1] + row[x + 1]);
    if (w > 1) o[w - 1] = BlurTap(row[w - 1], row[w - 2] + row[w - 1]);
  }
}

// The delta against the running average, thresholded.
EDGED_CLONES void Threshold(const uint8_t* __restrict__ blurred, const float* __restrict__ avg,
                            uint8_t* __restrict__ thresh, int n, int threshold) {
  for (int i = 0; i < n; ++i) thresh[i] = DeltaThreshold(blurred[i], avg[i], threshold);
}

// 3x3 dilate with out-of-frame pixels ignored: column max of three rows, then row max of three.
EDGED_CLONES bool Dilate(const uint8_t* in, uint8_t* scratch, uint8_t* out, int w, int h) {
  uint8_t acc = 0;
  for (int y = 0; y < h; ++y) {
    const uint8_t* up = in + static_cast<size_t>(y > 0 ? y - 1 : y) * w;
    const uint8_t* mid = in + static_cast<size_t>(y) * w;
    const uint8_t* dn = in + static_cast<size_t>(y < h - 1 ? y + 1 : y) * w;
    for (int x = 0; x < w; ++x) scratch[x] = Max3(up[x], mid[x], dn[x]);
    uint8_t* o = out + static_cast<size_t>(y) * w;
    o[0] = w > 1 ? Max3(scratch[0], scratch[0], scratch[1]) : scratch[0];
    for (int x = 1; x < w - 1; ++x) o[x] = Max3(scratch[x - 1], scratch[x], scratch[x + 1]);
    if (w > 1) o[w - 1] = Max3(scratch[w - 2], scratch[w - 1], scratch[w - 1]);
    for (int x = 0; x < w; ++x) acc |= o[x];
  }
  return acc != 0;
}

void AccumulatePortable(const uint8_t* src, float* avg, int n, float a, float b) {
  for (int i = 0; i < n; ++i) avg[i] = AccumulateWeighted(src[i], avg[i], a, b);
}

#if defined(EDGED_HAVE_FMA_PATH)
// The same fused multiply-add in hardware: an IEEE fma has one correctly rounded result, which is what
// FusedMulAdd computes (DetectMotion.FusedMulAddIsFma checks it), eight lanes at a time.
__attribute__((target("avx2,fma"))) void AccumulateFma(const uint8_t* src, float* avg, int n, float a, float b) {
  for (int i = 0; i < n; ++i) avg[i] = __builtin_fmaf(avg[i], b, static_cast<float>(src[i]) * a);
}
#endif

using AccumulateFn = void (*)(const uint8_t*, float*, int, float, float);
AccumulateFn PickAccumulate() {
#if defined(EDGED_HAVE_FMA_PATH)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return AccumulateFma;
#endif
  return AccumulatePortable;
}

class CpuMotionPixels final : public MotionPixels {
 public:
  explicit CpuMotionPixels(MotionGeometry g) : g_(std::move(g)), accumulate_(PickAccumulate()) {
    const size_t n = static_cast<size_t>(g_.motion.area());
    resized_.resize(n);
    stretched_.resize(n);
    vblur_.resize(n);
    blurred_.resize(n);
    thresh_.resize(n);
    dilated_.resize(n);
    scratch_.resize(static_cast<size_t>(g_.motion.width));
    avg_.assign(n, 0.0f);
    ContrastReset(&contrast_);
  }

  StatusOr<const uint8_t*> Run(const cv::Mat& luma, bool* any) override {
    const int w = g_.motion.width, h = g_.motion.height;
    const int n = w * h;

    // Nearest-neighbour resize and histogram in one pass. Source rows are several kilobytes apart and
    // the hardware prefetcher does not follow that stride, so rows are prefetched kPrefetchRows ahead:
    // one row's work is shorter than a memory round trip.
    constexpr int kPrefetchRows = 3;
    const auto prefetch_row = [&](int y) {
      const uint8_t* row = luma.ptr<uint8_t>(g_.src_y[y]);
      for (int x = 0; x < luma.cols; x += 64) __builtin_prefetch(row + x);
    };
    for (int y = 0; y < std::min(kPrefetchRows, h); ++y) prefetch_row(y);
    // Four histograms taken in turn: neighbouring pixels are often equal, and incrementing one counter
    // twice in a row waits for the first store each time.
    uint32_t hists[4][256] = {};
    const int w4 = w & ~3;
    for (int y = 0; y < h; ++y) {
      const uint8_t* src = luma.ptr<uint8_t>(g_.src_y[y]);
      if (y + kPrefetchRows < h) prefetch_row(y + kPrefetchRows);
      uint8_t* dst = &resized_[static_cast<size_t>(y) * w];
      const int* src_x = g_.src_x.data();
      for (int x = 0; x < w4; x += 4) {
        const uint8_t v0 = src[src_x[x]], v1 = src[src_x[x + 1]], v2 = src[src_x[x + 2]], v3 = src[src_x[x + 3]];
        dst[x] = v0;
        dst[x + 1] = v1;
        dst[x + 2] = v2;
        dst[x + 3] = v3;
        ++hists[0][v0];
        ++hists[1][v1];
        ++hists[2][v2];
        ++hists[3][v3];
      }
      for (int x = w4; x < w; ++x) {
        const uint8_t v = src[src_x[x]];
        dst[x] = v;
        ++hists[0][v];
      }
    }
    uint32_t hist[256];
    for (int v = 0; v < 256; ++v) hist[v] = hists[0][v] + hists[1][v] + hists[2][v] + hists[3][v];

    uint8_t lut[256];
    if (g_.improve_contrast) {
      ContrastUpdate(&contrast_, hist, static_cast<uint32_t>(n), lut);
    } else {
      for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v);
    }
    ApplyTable(resized_.data(), g_.keep.data(), lut, stretched_.data(), n);
    BlurColumns(stretched_.data(), vblur_.data(), w, h);
    BlurRows(vblur_.data(), blurred_.data(), w, h);
    Threshold(blurred_.data(), avg_.data(), thresh_.data(), n, g_.threshold);
    *any = Dilate(thresh_.data(), scratch_.data(), dilated_.data(), w, h);
    return dilated_.data();
  }

  Status Accumulate(double alpha) override {
    accumulate_(blurred_.data(), avg_.data(), static_cast<int>(avg_.size()), static_cast<float>(alpha),
                static_cast<float>(1.0 - alpha));
    return OkStatus();
  }

  cv::Mat Blurred() override { return cv::Mat(g_.motion, CV_8UC1, blurred_.data()).clone(); }
  cv::Mat Average() override { return cv::Mat(g_.motion, CV_32FC1, avg_.data()).clone(); }

 private:
  MotionGeometry g_;
  AccumulateFn accumulate_;
  ContrastState contrast_;
  std::vector<uint8_t> resized_, stretched_, vblur_, blurred_, thresh_, dilated_, scratch_;
  std::vector<float> avg_;
};

}  // namespace

std::unique_ptr<MotionPixels> MakeCpuMotionPixels(MotionGeometry geometry) {
  return std::make_unique<CpuMotionPixels>(std::move(geometry));
}

}  // namespace edged::detect::detail
