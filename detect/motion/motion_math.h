// The per-pixel math of Frigate's ImprovedMotionDetector, written once and compiled twice: by the C++
// compiler for the CPU path (motion_cpu.cc) and by nvcc for the CUDA kernels (motion_cuda.cu). Each
// function reproduces what the numpy / scipy / OpenCV call in frigate/motion/improved_motion.py does,
// bit for bit, so that both back-ends give Frigate's answer and each other's:
//   np.percentile(..).astype(uint8)  -> PercentileU8 (numpy 'linear' method, then truncation)
//   np.clip + stretch .astype(uint8) -> ContrastStretch (float64 math, truncation)
//   scipy gaussian_filter(sigma=1, radius=1) on uint8 -> BlurTap (float64 taps, symmetric form,
//                                                       truncation after each axis, 'reflect' border;
//                                                       computed in fixed point with equal results)
//   cv2.convertScaleAbs(avg)         -> RoundToU8 (round half to even, saturate)
//   cv2.absdiff + cv2.threshold      -> DeltaThreshold
//   cv2.accumulateWeighted           -> AccumulateWeighted (fmaf(dst, 1-alpha, src*alpha), one rounding)
//   cv2.dilate(thresh, None)         -> a 3x3 max with out-of-frame pixels ignored (Max3)
// Only IEEE add/mul/div and compares are used, no libm, so host and device agree exactly; nvcc must
// compile these with --fmad=false (set in CMakeLists.txt) so that it does not fuse a multiply and an add
// that the host rounds separately. Plain C types only: no OpenCV, no std containers.
#pragma once

#include <stdint.h>
#include <string.h>

#ifndef EDGED_HD
#if defined(__CUDACC__)
#define EDGED_HD __host__ __device__
#else
#define EDGED_HD
#endif
#endif

namespace edged::detect::motion {

// Frigate's fixed parameters.
inline constexpr int kContrastHistory = 50;  // frames in the rolling 4th/96th percentile history
inline constexpr double kLowPercentile = 4.0 / 100.0;   // np.percentile divides q by 100
inline constexpr double kHighPercentile = 96.0 / 100.0;
inline constexpr double kCalibrationAlpha = 0.2;  // running-average weight while calibrating
inline constexpr int kMotionFramesBeforeAbsorb = 10;

// scipy.ndimage._gaussian_kernel1d(sigma=1, order=0, radius=1) as exact doubles: the centre tap and
// the two side taps (exp(-0.5) normalised). Literal bits so host and device use the same weights.
inline constexpr double kBlurCentre = 0x1.ceb51ca22d9f7p-2;  // 0.45186276...
inline constexpr double kBlurSide = 0x1.18a571aee9305p-2;    // 0.27406862...

// The k-th smallest value (0-based) of the pixels counted in a 256-bin histogram.
EDGED_HD inline int KthSmallest(const uint32_t* hist, uint32_t k) {
  uint32_t seen = 0;
  for (int v = 0; v < 256; ++v) {
    seen += hist[v];
    if (seen > k) return v;
  }
  return 255;
}

// np.percentile(pixels, q * 100).astype(np.uint8) for `n` pixels counted in `hist`, q in [0, 1]:
// numpy's default 'linear' method (virtual index (n-1)*q, lerp written as numpy's _lerp writes it).
EDGED_HD inline uint8_t PercentileU8(const uint32_t* hist, uint32_t n, double q) {
  if (n == 0) return 0;
  const double virtual_index = static_cast<double>(n - 1) * q;
  if (virtual_index >= static_cast<double>(n - 1)) return static_cast<uint8_t>(KthSmallest(hist, n - 1));
  const uint32_t below = static_cast<uint32_t>(virtual_index);  // floor: the index is >= 0
  const double t = virtual_index - static_cast<double>(below);
  const int a = KthSmallest(hist, below);
  const int b = KthSmallest(hist, below + 1);
  const double diff = static_cast<double>(b - a);
  const double v = t >= 0.5 ? static_cast<double>(b) - diff * (1.0 - t) : static_cast<double>(a) + diff * t;
  return static_cast<uint8_t>(v);  // astype(np.uint8) truncates; v is in [a, b]
}

// The contrast-stretched value of `v`: np.clip(v, lo, hi), ((v - lo) / (hi - lo)) * 255, truncated.
// lo < hi always (they are means of uint8 pairs with min < max or the initial 0/255).
EDGED_HD inline uint8_t ContrastStretch(int v, double lo, double hi) {
  double c = static_cast<double>(v);
  c = c < lo ? lo : c;
  c = c > hi ? hi : c;
  return static_cast<uint8_t>(((c - lo) / (hi - lo)) * 255.0);
}

// The rolling contrast history of ImprovedMotionDetector: a ring of (min, max) pairs that starts as
// (0, 255) everywhere, and the lookup table that maps a raw pixel to its stretched value.
struct ContrastState {
  uint8_t lo[kContrastHistory];
  uint8_t hi[kContrastHistory];
  int next;  // ring position written next
};

EDGED_HD inline void ContrastReset(ContrastState* s) {
  for (int i = 0; i < kContrastHistory; ++i) {
    s->lo[i] = 0;
    s->hi[i] = 255;
  }
  s->next = 0;
}

// One frame's contrast step from its histogram (`n` pixels): percentiles, history update, and the
// 256-entry table to apply. When the frame is one flat colour (4th percentile >= 96th) Frigate leaves
// it untouched and does not record it: the table is the identity.
EDGED_HD inline void ContrastUpdate(ContrastState* s, const uint32_t* hist, uint32_t n, uint8_t* lut) {
  const uint8_t lo = PercentileU8(hist, n, kLowPercentile);
  const uint8_t hi = PercentileU8(hist, n, kHighPercentile);
  if (!(lo < hi)) {
    for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v);
    return;
  }
  s->lo[s->next] = lo;
  s->hi[s->next] = hi;
  s->next = (s->next + 1) % kContrastHistory;
  // np.mean over the uint8 column: an exact integer sum divided by the count in float64.
  uint32_t sum_lo = 0, sum_hi = 0;
  for (int i = 0; i < kContrastHistory; ++i) {
    sum_lo += s->lo[i];
    sum_hi += s->hi[i];
  }
  const double avg_lo = static_cast<double>(sum_lo) / kContrastHistory;
  const double avg_hi = static_cast<double>(sum_hi) / kContrastHistory;
  for (int v = 0; v < 256; ++v) lut[v] = ContrastStretch(v, avg_lo, avg_hi);
}

// One tap of scipy's 3-tap Gaussian on uint8 data: centre*w0 + (left+right)*w1 in float64 (scipy's
// symmetric-kernel form, which adds the two sides first), truncated back to uint8.
EDGED_HD inline uint8_t BlurTapFloat64(int centre, int side_sum) {
  const double v = static_cast<double>(centre) * kBlurCentre + static_cast<double>(side_sum) * kBlurSide;
  return static_cast<uint8_t>(v);
}

// The same tap in 16.16 fixed point, which the CPU runs eight lanes at a time where float64 runs four.
// The weights were searched so that it equals BlurTapFloat64 for every centre 0..255 and side sum
// 0..510, including the 240 sums that land exactly on an integer; DetectMotion.FixedPointBlurEqualsScipy
// checks all 130,816 inputs. The largest sum, 255*29614 + 510*17961, is under 2^24.
inline constexpr int kBlurCentreQ16 = 29614;
inline constexpr int kBlurSideQ16 = 17961;
EDGED_HD inline uint8_t BlurTap(int centre, int side_sum) {
  return static_cast<uint8_t>((centre * kBlurCentreQ16 + side_sum * kBlurSideQ16) >> 16);
}

// scipy 'reflect' mode (d c b a | a b c d): the pixel before the first is the first.
EDGED_HD inline int ReflectIndex(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

// cv2.convertScaleAbs of a running-average pixel (>= 0, <= 255): round half to even. Adding and
// subtracting 2^23 rounds a float in [0, 2^23) to an integer in the current (nearest-even) mode
// without libm, identically on host and device.
EDGED_HD inline int RoundToU8(float v) {
  v = v < 0.0f ? -v : v;
  v = v < 255.0f ? v : 255.0f;  // saturate; branch-free so the CPU loop vectorises
  const float r = (v + 8388608.0f) - 8388608.0f;
  return static_cast<int>(r);
}

// |blurred - round(avg)| > threshold  ->  255, else 0 (cv2.absdiff then THRESH_BINARY).
EDGED_HD inline uint8_t DeltaThreshold(uint8_t blurred, float avg, int threshold) {
  const int delta = static_cast<int>(blurred) - RoundToU8(avg);
  return (delta > threshold || -delta > threshold) ? 255 : 0;
}

EDGED_HD inline uint8_t Max3(uint8_t a, uint8_t b, uint8_t c) {
  const uint8_t m = a > b ? a : b;
  return m > c ? m : c;
}

// fmaf(x, y, z) for floats with a single rounding, without relying on an FMA instruction: x*y is exact
// in double (24+24 bits), the sum is rounded to double with round-to-odd (TwoSum tells whether and in
// which direction it was inexact), and round-to-odd followed by rounding to float equals one rounding
// (53 >= 2*24+2). On the device __fmaf_rn gives the same value; the emulation is used there too so the
// function has one body.
EDGED_HD inline float FusedMulAdd(float x, float y, float z) {
  const double p = static_cast<double>(x) * static_cast<double>(y);
  const double q = static_cast<double>(z);
  const double s = p + q;
  const double pv = s - q;  // TwoSum: s + err == p + q exactly
  const double err = (p - pv) + (q - (s - pv));
  uint64_t bits;
  memcpy(&bits, &s, sizeof bits);
  if (err != 0.0 && (bits & 1u) == 0) {
    // Move to the odd neighbour on the side where the exact sum lies.
    const bool away_from_zero = (err > 0.0) == (s > 0.0);
    bits = away_from_zero ? bits + 1 : bits - 1;
  }
  double odd;
  memcpy(&odd, &bits, sizeof odd);
  return static_cast<float>(odd);
}

// cv2.accumulateWeighted(src, avg, alpha) per pixel, as OpenCV's SIMD body computes it:
// avg = fma(avg, (float)(1 - alpha), src * (float)alpha).
EDGED_HD inline float AccumulateWeighted(uint8_t src, float avg, float alpha, float beta) {
  return FusedMulAdd(avg, beta, static_cast<float>(src) * alpha);
}

// OpenCV INTER_NEAREST: source index of destination index `d` for a src/dst scale `inv_scale`.
EDGED_HD inline int NearestIndex(int d, double inv_scale, int src_size) {
  const double f = static_cast<double>(d) * inv_scale;
  int s = static_cast<int>(f);  // floor: f >= 0
  return s < src_size - 1 ? s : src_size - 1;
}

}  // namespace edged::detect::motion
