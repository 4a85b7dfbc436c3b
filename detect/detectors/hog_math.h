// The per-pixel and per-cell math of the HOG people detector, written once and
// compiled twice: by the C++ compiler for the CPU twin (hog_cpu.cc) and by nvcc
// for the CUDA kernels (hog_cuda.cu). The layout follows OpenCV's HOGDescriptor
// with its default people detector (64x128 window, 16x16 blocks at an 8 px
// stride, 8x8 cells, 9 unsigned orientation bins, Gaussian block weighting with
// sigma 4, L2-Hys normalisation, sqrt gamma), so the SVM coefficients of
// getDefaultPeopleDetector() apply unchanged and both back-ends find the
// windows OpenCV finds. Plain C types only: no OpenCV, no std containers.
#pragma once

#include <math.h>
#include <stdint.h>

#ifndef EDGED_HD
#if defined(__CUDACC__)
#define EDGED_HD __host__ __device__
#else
#define EDGED_HD
#endif
#endif

namespace edged::detect::hog {

inline constexpr int kWinWidth = 64;
inline constexpr int kWinHeight = 128;
inline constexpr int kCell = 8;
inline constexpr int kBlock = 16;
inline constexpr int kBlockStride = 8;
inline constexpr int kBins = 9;
inline constexpr int kBlockHistSize = 4 * kBins; // 2x2 cells
inline constexpr int kWinBlocksX = (kWinWidth - kBlock) / kBlockStride + 1; // 7
inline constexpr int kWinBlocksY =
    (kWinHeight - kBlock) / kBlockStride + 1; // 15
inline constexpr int kDescriptorSize =
    kWinBlocksX * kWinBlocksY * kBlockHistSize; // 3780
inline constexpr float kL2HysThreshold = 0.2f;
inline constexpr float kPi = 3.14159265358979323846f;

// A pixel's gradient, its magnitude already split between the two nearest
// orientation bins.
struct GradBins {
  float mag0;
  float mag1;
  uint8_t bin0;
  uint8_t bin1;
};

// BORDER_REFLECT_101 (OpenCV's default for HOG): -1 -> 1, n -> n-2.
EDGED_HD inline int Reflect101(int i, int n) {
  if (n == 1)
    return 0;
  while (i < 0 || i >= n)
    i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

// Gamma correction as OpenCV does it: the square root of the 8-bit value.
EDGED_HD inline float Gamma(uint8_t v) { return sqrtf(static_cast<float>(v)); }

// Splits a gradient between the two orientation bins whose centres surround its
// angle (unsigned gradients: angles modulo pi, bin centres at (k + 0.5) * pi /
// 9).
EDGED_HD inline GradBins BinGradient(float dx, float dy) {
  float mag = sqrtf(dx * dx + dy * dy);
  float angle = atan2f(dy, dx);
  if (angle < 0)
    angle += 2 * kPi;
  float a = angle * (kBins / kPi) - 0.5f;
  int hidx = static_cast<int>(floorf(a));
  a -= static_cast<float>(hidx);
  if (hidx < 0) {
    hidx += kBins;
  } else if (hidx >= kBins) {
    hidx -= kBins;
  }
  if (hidx >= kBins)
    hidx -= kBins; // angle rounded up to exactly 2*pi
  int next = hidx + 1 < kBins ? hidx + 1 : 0;
  GradBins g;
  g.mag0 = mag * (1.f - a);
  g.mag1 = mag * a;
  g.bin0 = static_cast<uint8_t>(hidx);
  g.bin1 = static_cast<uint8_t>(next);
  return g;
}

// Central-difference gradient at (x, y) of an interleaved BGR image (rows
// `step` bytes apart), on the gamma-corrected values; of the three channels the
// one with the largest magnitude wins (R, then G, then B on ties, as in
// OpenCV).
EDGED_HD inline GradBins PixelGradient(const uint8_t *bgr, int step, int width,
                                       int height, int x, int y) {
  const int xl = Reflect101(x - 1, width) * 3;
  const int xr = Reflect101(x + 1, width) * 3;
  const uint8_t *row = bgr + static_cast<long>(y) * step;
  const uint8_t *up = bgr + static_cast<long>(Reflect101(y - 1, height)) * step;
  const uint8_t *down =
      bgr + static_cast<long>(Reflect101(y + 1, height)) * step;
  const int xc = x * 3;
  float best_dx = 0, best_dy = 0, best_mag = -1;
  for (int c = 2; c >= 0; --c) {
    float dx = Gamma(row[xr + c]) - Gamma(row[xl + c]);
    float dy = Gamma(down[xc + c]) - Gamma(up[xc + c]);
    float mag = dx * dx + dy * dy;
    if (mag > best_mag) {
      best_dx = dx;
      best_dy = dy;
      best_mag = mag;
    }
  }
  return BinGradient(best_dx, best_dy);
}

// Bilinear weight of a pixel at offset p (0..15) inside a block towards the
// block's cell c (0 or 1), measured between cell centres; pixels outside the
// span between the centres keep only their share.
EDGED_HD inline float CellWeight(int p, int c) {
  float pos = (static_cast<float>(p) + 0.5f) / kCell - 0.5f;
  float w = 1.f - fabsf(pos - static_cast<float>(c));
  return w > 0.f ? w : 0.f;
}

// Gaussian window over the block, sigma = (16 + 16) / 8 = 4, centred as OpenCV
// centres it.
EDGED_HD inline float BlockGaussian(int px, int py) {
  float dx = static_cast<float>(px) - kBlock * 0.5f;
  float dy = static_cast<float>(py) - kBlock * 0.5f;
  return expf(-(dx * dx + dy * dy) * (1.f / (4.f * 4.f * 2.f)));
}

// Adds one pixel (at offset px, py inside the block) to the block's 36-bin
// histogram. Cells are stored column-major (cell x * 2 + cell y), as OpenCV
// lays out the descriptor.
EDGED_HD inline void AccumulatePixel(const GradBins &g, int px, int py,
                                     float *hist) {
  const float gw = BlockGaussian(px, py);
  for (int cx = 0; cx < 2; ++cx) {
    const float wx = CellWeight(px, cx);
    if (wx == 0.f)
      continue;
    for (int cy = 0; cy < 2; ++cy) {
      const float w = wx * CellWeight(py, cy) * gw;
      if (w == 0.f)
        continue;
      float *cell = hist + (cx * 2 + cy) * kBins;
      cell[g.bin0] += g.mag0 * w;
      cell[g.bin1] += g.mag1 * w;
    }
  }
}

// The histogram of the block whose top-left pixel is (bx, by), from a per-pixel
// gradient map with `stride` entries per row.
EDGED_HD inline void BlockHistogram(const GradBins *grad, int stride, int bx,
                                    int by, float *hist) {
  for (int i = 0; i < kBlockHistSize; ++i)
    hist[i] = 0.f;
  for (int py = 0; py < kBlock; ++py) {
    const GradBins *row = grad + static_cast<long>(by + py) * stride + bx;
    for (int px = 0; px < kBlock; ++px)
      AccumulatePixel(row[px], px, py, hist);
  }
}

// L2-Hys: L2 normalise, clip at 0.2, normalise again (OpenCV's epsilons).
EDGED_HD inline void NormalizeL2Hys(float *hist) {
  float sum = 0.f;
  for (int i = 0; i < kBlockHistSize; ++i)
    sum += hist[i] * hist[i];
  float scale = 1.f / (sqrtf(sum) + kBlockHistSize * 0.1f);
  sum = 0.f;
  for (int i = 0; i < kBlockHistSize; ++i) {
    float v = hist[i] * scale;
    hist[i] = v < kL2HysThreshold ? v : kL2HysThreshold;
    sum += hist[i] * hist[i];
  }
  scale = 1.f / (sqrtf(sum) + 1e-3f);
  for (int i = 0; i < kBlockHistSize; ++i)
    hist[i] *= scale;
}

// The linear SVM score of the window whose top-left block is (wx, wy) in a grid
// of normalised block histograms (`grid_width` blocks per row, one block every
// 8 px). Descriptor order is OpenCV's: blocks column-major inside the window.
// `svm` holds kDescriptorSize weights; `rho` is the bias.
EDGED_HD inline float WindowScore(const float *blocks, int grid_width, int wx,
                                  int wy, const float *svm, float rho) {
  float s = rho;
  for (int j = 0; j < kWinBlocksX; ++j) {
    for (int i = 0; i < kWinBlocksY; ++i) {
      const float *h =
          blocks +
          (static_cast<long>(wy + i) * grid_width + (wx + j)) * kBlockHistSize;
      const float *w = svm + (j * kWinBlocksY + i) * kBlockHistSize;
      for (int k = 0; k < kBlockHistSize; ++k)
        s += h[k] * w[k];
    }
  }
  return s;
}

// Bilinear resampling of an interleaved 3-channel image (half-pixel centres,
// edges clamped), the pyramid step of the multi-scale search. Writes the 3
// channels of destination pixel (x, y).
EDGED_HD inline void ResizePixel(const uint8_t *src, int src_step, int src_w,
                                 int src_h, int dst_w, int dst_h, int x, int y,
                                 uint8_t *out) {
  const float sx = static_cast<float>(src_w) / static_cast<float>(dst_w);
  const float sy = static_cast<float>(src_h) / static_cast<float>(dst_h);
  float fx = (static_cast<float>(x) + 0.5f) * sx - 0.5f;
  float fy = (static_cast<float>(y) + 0.5f) * sy - 0.5f;
  if (fx < 0)
    fx = 0;
  if (fy < 0)
    fy = 0;
  int x0 = static_cast<int>(fx);
  int y0 = static_cast<int>(fy);
  if (x0 > src_w - 1)
    x0 = src_w - 1;
  if (y0 > src_h - 1)
    y0 = src_h - 1;
  const int x1 = x0 + 1 < src_w ? x0 + 1 : src_w - 1;
  const int y1 = y0 + 1 < src_h ? y0 + 1 : src_h - 1;
  float ax = fx - static_cast<float>(x0);
  float ay = fy - static_cast<float>(y0);
  if (ax > 1.f)
    ax = 1.f;
  if (ay > 1.f)
    ay = 1.f;
  const uint8_t *r0 = src + static_cast<long>(y0) * src_step;
  const uint8_t *r1 = src + static_cast<long>(y1) * src_step;
  for (int c = 0; c < 3; ++c) {
    float top = r0[x0 * 3 + c] * (1.f - ax) + r0[x1 * 3 + c] * ax;
    float bottom = r1[x0 * 3 + c] * (1.f - ax) + r1[x1 * 3 + c] * ax;
    float v = top * (1.f - ay) + bottom * ay + 0.5f;
    out[c] = static_cast<uint8_t>(v > 255.f ? 255.f : v);
  }
}

// Round half to even, as cvRound does (window positions scaled back to the
// frame).
EDGED_HD inline int RoundEven(double v) {
  double f = floor(v);
  double d = v - f;
  long r = static_cast<long>(f);
  if (d > 0.5 || (d == 0.5 && (r & 1)))
    ++r;
  return static_cast<int>(r);
}

// Size of pyramid level `scale` (OpenCV's cvRound(size / scale)).
EDGED_HD inline int ScaledSize(int size, double scale) {
  return RoundEven(size / scale);
}

} // namespace edged::detect::hog
