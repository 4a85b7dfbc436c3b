// The HOG people detector: three back-ends for the raw multi-scale window
// search (OpenCV on the CPU, the own CPU twin of the CUDA kernels, the CUDA
// kernels), one grouping step and one score mapping.
#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "detect/detectors/hog_internal.h"
#include "detect/detectors/hog_math.h"
#if EDGED_HAVE_CUDA
#include "detect/detectors/hog_cuda.h"
#endif

namespace edged::detect::detail {
namespace {

// The SVM of OpenCV's default people detector: 3780 weights and the bias, read
// once per detector.
const std::vector<float> &PeopleSvm() {
  static const std::vector<float> svm =
      cv::HOGDescriptor::getDefaultPeopleDetector();
  return svm;
}

// The default constructor is the people detector's layout, gamma correction
// included (the explicit constructor turns gamma correction off).
cv::HOGDescriptor MakeDescriptor() {
  cv::HOGDescriptor hog;
  hog.setSVMDetector(PeopleSvm());
  return hog;
}

// Gradients and normalised block histograms of one pyramid level (the own CPU
// implementation).
struct TwinLevel {
  int grid_w = 0, grid_h = 0;
  std::vector<float> blocks; // grid_w * grid_h * 36
};

TwinLevel ComputeTwinLevel(const cv::Mat &bgr) {
  TwinLevel level;
  const int w = bgr.cols, h = bgr.rows;
  if (w < hog::kBlock || h < hog::kBlock)
    return level;
  std::vector<hog::GradBins> grad(static_cast<size_t>(w) * h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      grad[static_cast<size_t>(y) * w + x] =
          hog::PixelGradient(bgr.data, static_cast<int>(bgr.step), w, h, x, y);
    }
  }
  level.grid_w = (w - hog::kBlock) / hog::kBlockStride + 1;
  level.grid_h = (h - hog::kBlock) / hog::kBlockStride + 1;
  level.blocks.resize(static_cast<size_t>(level.grid_w) * level.grid_h *
                      hog::kBlockHistSize);
  for (int by = 0; by < level.grid_h; ++by) {
    for (int bx = 0; bx < level.grid_w; ++bx) {
      float *hist =
          &level.blocks[(static_cast<size_t>(by) * level.grid_w + bx) *
                        hog::kBlockHistSize];
      hog::BlockHistogram(grad.data(), w, bx * hog::kBlockStride,
                          by * hog::kBlockStride, hist);
      hog::NormalizeL2Hys(hist);
    }
  }
  return level;
}

cv::Mat TwinResize(const cv::Mat &bgr, cv::Size size) {
  cv::Mat out(size, CV_8UC3);
  for (int y = 0; y < size.height; ++y) {
    for (int x = 0; x < size.width; ++x) {
      hog::ResizePixel(bgr.data, static_cast<int>(bgr.step), bgr.cols, bgr.rows,
                       size.width, size.height, x, y,
                       out.ptr<uint8_t>(y) + 3 * x);
    }
  }
  return out;
}

// Similar rectangles for grouping (OpenCV's SimilarRects).
bool Similar(const cv::Rect &a, const cv::Rect &b, double eps) {
  double delta =
      eps * (std::min(a.width, b.width) + std::min(a.height, b.height)) * 0.5;
  return std::abs(a.x - b.x) <= delta && std::abs(a.y - b.y) <= delta &&
         std::abs(a.x + a.width - b.x - b.width) <= delta &&
         std::abs(a.y + a.height - b.y - b.height) <= delta;
}

} // namespace

std::vector<double> HogPyramidScales(cv::Size image, const HogSearch &search) {
  std::vector<double> scales;
  double scale = 1.0;
  for (int level = 0; level < std::max(search.max_levels, 1); ++level) {
    if (hog::ScaledSize(image.width, scale) < hog::kWinWidth ||
        hog::ScaledSize(image.height, scale) < hog::kWinHeight) {
      break;
    }
    scales.push_back(scale);
    if (search.scale <= 1)
      break;
    scale *= search.scale;
  }
  return scales;
}

std::vector<HogWindow> HogOpenCvWindows(const cv::Mat &bgr,
                                        const HogSearch &search) {
  thread_local cv::HOGDescriptor hog = MakeDescriptor();
  std::vector<cv::Rect> rects;
  std::vector<double> weights;
  if (bgr.cols < hog::kWinWidth || bgr.rows < hog::kWinHeight)
    return {};
  hog.detectMultiScale(bgr, rects, weights, search.hit_threshold,
                       cv::Size(hog::kCell, hog::kCell), cv::Size(0, 0),
                       search.scale, /*finalThreshold=*/0,
                       /*useMeanshiftGrouping=*/false);
  std::vector<HogWindow> out;
  for (size_t i = 0; i < rects.size(); ++i)
    out.push_back({rects[i], weights[i]});
  return out;
}

std::vector<float> HogTwinDescriptor(const cv::Mat &bgr_window) {
  TwinLevel level = ComputeTwinLevel(bgr_window);
  std::vector<float> desc(hog::kDescriptorSize);
  for (int j = 0; j < hog::kWinBlocksX; ++j) {
    for (int i = 0; i < hog::kWinBlocksY; ++i) {
      const float *h =
          &level.blocks[(static_cast<size_t>(i) * level.grid_w + j) *
                        hog::kBlockHistSize];
      std::copy(h, h + hog::kBlockHistSize,
                desc.begin() +
                    (j * hog::kWinBlocksY + i) * hog::kBlockHistSize);
    }
  }
  return desc;
}

std::vector<HogWindow> HogTwinWindows(const cv::Mat &bgr,
                                      const HogSearch &search) {
  const std::vector<float> &svm = PeopleSvm();
  const float rho = svm[hog::kDescriptorSize];
  std::vector<HogWindow> out;
  for (double scale : HogPyramidScales(bgr.size(), search)) {
    cv::Size size(hog::ScaledSize(bgr.cols, scale),
                  hog::ScaledSize(bgr.rows, scale));
    cv::Mat img = size == bgr.size() ? bgr : TwinResize(bgr, size);
    TwinLevel level = ComputeTwinLevel(img);
    const int nwx = (size.width - hog::kWinWidth) / hog::kCell + 1;
    const int nwy = (size.height - hog::kWinHeight) / hog::kCell + 1;
    const cv::Size win(hog::RoundEven(hog::kWinWidth * scale),
                       hog::RoundEven(hog::kWinHeight * scale));
    for (int wy = 0; wy < nwy; ++wy) {
      for (int wx = 0; wx < nwx; ++wx) {
        float s = hog::WindowScore(level.blocks.data(), level.grid_w, wx, wy,
                                   svm.data(), rho);
        if (s < search.hit_threshold)
          continue;
        out.push_back({cv::Rect(hog::RoundEven(wx * hog::kCell * scale),
                                hog::RoundEven(wy * hog::kCell * scale),
                                win.width, win.height),
                       s});
      }
    }
  }
  return out;
}

#if EDGED_HAVE_CUDA
StatusOr<std::vector<HogWindow>> HogCudaWindows(const cv::Mat &bgr,
                                                const HogSearch &search) {
  thread_local std::unique_ptr<cuda::HogCuda> gpu;
  if (!gpu) {
    std::string error;
    gpu = cuda::HogCuda::Create(PeopleSvm(), &error);
    if (!gpu)
      return UnavailableError(error);
  }
  cv::Mat img = bgr.isContinuous() ? bgr : bgr.clone();
  std::vector<cuda::RawWindow> raw;
  std::string error =
      gpu->Detect(img.data, img.cols, img.rows, static_cast<int>(img.step),
                  HogPyramidScales(img.size(), search),
                  static_cast<float>(search.hit_threshold), &raw);
  if (!error.empty())
    return UnavailableError(error);
  std::vector<HogWindow> out;
  for (const auto &r : raw)
    out.push_back({cv::Rect(r.x, r.y, r.width, r.height), r.score});
  return out;
}
#endif

std::vector<HogWindow> GroupHogWindows(const std::vector<HogWindow> &windows,
                                       int group_threshold) {
  if (group_threshold <= 0 || windows.empty())
    return windows;
  constexpr double kEps = 0.2;
  // Union-find over the similarity relation: clusters are its transitive
  // closure, as cv::partition.
  std::vector<int> parent(windows.size());
  for (size_t i = 0; i < parent.size(); ++i)
    parent[i] = static_cast<int>(i);
  auto find = [&](int i) {
    while (parent[i] != i)
      i = parent[i] = parent[parent[i]];
    return i;
  };
  for (size_t i = 0; i < windows.size(); ++i) {
    for (size_t j = i + 1; j < windows.size(); ++j) {
      if (Similar(windows[i].box, windows[j].box, kEps))
        parent[find(static_cast<int>(i))] = find(static_cast<int>(j));
    }
  }
  struct Cluster {
    cv::Rect sum;
    int n = 0;
    double best = -1e300;
    cv::Rect box;
  };
  std::vector<Cluster> clusters;
  std::vector<int> cluster_of(windows.size(), -1);
  for (size_t i = 0; i < windows.size(); ++i) {
    int root = find(static_cast<int>(i));
    if (cluster_of[root] < 0) {
      cluster_of[root] = static_cast<int>(clusters.size());
      clusters.emplace_back();
    }
    Cluster &c = clusters[cluster_of[root]];
    const cv::Rect &r = windows[i].box;
    c.sum.x += r.x;
    c.sum.y += r.y;
    c.sum.width += r.width;
    c.sum.height += r.height;
    c.n++;
    c.best = std::max(c.best, windows[i].score);
  }
  for (Cluster &c : clusters) { // OpenCV's float average, rounded
    const float s = 1.f / static_cast<float>(c.n);
    c.box = cv::Rect(cvRound(c.sum.x * s), cvRound(c.sum.y * s),
                     cvRound(c.sum.width * s), cvRound(c.sum.height * s));
  }
  std::vector<HogWindow> out;
  for (size_t i = 0; i < clusters.size(); ++i) {
    const Cluster &a = clusters[i];
    if (a.n <= group_threshold)
      continue;
    bool inside = false;
    for (size_t j = 0; j < clusters.size() && !inside; ++j) {
      const Cluster &b = clusters[j];
      if (j == i || b.n <= group_threshold)
        continue;
      int dx = cvRound(b.box.width * kEps), dy = cvRound(b.box.height * kEps);
      inside = a.box.x >= b.box.x - dx && a.box.y >= b.box.y - dy &&
               a.box.x + a.box.width <= b.box.x + b.box.width + dx &&
               a.box.y + a.box.height <= b.box.y + b.box.height + dy &&
               (b.n > std::max(3, a.n) || a.n < 3);
    }
    if (!inside)
      out.push_back({a.box, a.best});
  }
  return out;
}

namespace {

// Regions smaller than this are enlarged before the search: the SVM sees people
// about 96 px tall in its 64x128 window, and regions around distant people are
// often smaller than that.
constexpr int kMinSearchHeight = 192;

class HogDetector final : public Detector {
public:
  HogDetector(HogBackend backend, HogSearch search)
      : backend_(backend), search_(search) {}

  std::string_view type() const override { return "hog"; }
  Device device() const override {
    return backend_ == HogBackend::kCuda ? Device::kCuda : Device::kCpu;
  }

  StatusOr<std::vector<Detection>> Detect(const cv::Mat &bgr,
                                          const cv::Rect &region) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) {
      return InvalidArgumentError("hog: expected a non-empty 8-bit BGR frame");
    }
    const cv::Rect roi = region & cv::Rect(0, 0, bgr.cols, bgr.rows);
    if (roi.empty())
      return std::vector<Detection>{};
    cv::Mat crop = bgr(roi);
    double enlarge = 1.0;
    if (crop.rows < kMinSearchHeight) {
      enlarge = static_cast<double>(kMinSearchHeight) / crop.rows;
      cv::resize(crop, crop, cv::Size(), enlarge, enlarge, cv::INTER_LINEAR);
    }
    std::vector<HogWindow> raw;
    switch (backend_) {
    case HogBackend::kOpenCv:
      raw = HogOpenCvWindows(crop, search_);
      break;
    case HogBackend::kTwin:
      raw = HogTwinWindows(crop.isContinuous() ? crop : crop.clone(), search_);
      break;
    case HogBackend::kCuda: {
#if EDGED_HAVE_CUDA
      ASSIGN_OR_RETURN(raw, HogCudaWindows(crop, search_));
#else
      return UnavailableError(
          "hog: this build has no CUDA support; use device: cpu");
#endif
      break;
    }
    }
    std::vector<Detection> out;
    for (const HogWindow &w : GroupHogWindows(raw, search_.group_threshold)) {
      cv::Rect box(static_cast<int>(std::lround(w.box.x / enlarge)) + roi.x,
                   static_cast<int>(std::lround(w.box.y / enlarge)) + roi.y,
                   static_cast<int>(std::lround(w.box.width / enlarge)),
                   static_cast<int>(std::lround(w.box.height / enlarge)));
      box &= cv::Rect(0, 0, bgr.cols, bgr.rows);
      if (box.empty())
        continue;
      // The SVM margin becomes a confidence with a logistic curve: margin 0
      // (OpenCV's default hit threshold) is 0.5, the tracker's default
      // min_score; margin 1 is 0.73.
      float score = static_cast<float>(1.0 / (1.0 + std::exp(-w.score)));
      out.push_back({"person", score, box});
    }
    return out;
  }

private:
  HogBackend backend_;
  HogSearch search_;
};

} // namespace

std::unique_ptr<Detector> MakeHogDetector(HogBackend backend,
                                          const HogSearch &search) {
  return std::make_unique<HogDetector>(backend, search);
}

} // namespace edged::detect::detail
