// HOG detector: the own CPU twin against OpenCV's HOGDescriptor (descriptors,
// raw windows and scores), the CUDA kernels against the twin (skipped without a
// GPU), and detections on real images.
#include <algorithm>
#include <cmath>
#include <map>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "detect/detectors/detector.h"
#include "detect/detectors/hog_internal.h"
#include "detect/detectors/hog_math.h"

namespace edged::detect {
namespace {

using detail::HogSearch;
using detail::HogWindow;

cv::Mat LoadImage(const std::string &name) {
  cv::Mat img = cv::imread(std::string(EDGED_DATA_DIR) + "/images/" + name,
                           cv::IMREAD_COLOR);
  EXPECT_FALSE(img.empty()) << name;
  return img;
}

struct RectLess {
  bool operator()(const cv::Rect &a, const cv::Rect &b) const {
    return std::tie(a.x, a.y, a.width, a.height) <
           std::tie(b.x, b.y, b.width, b.height);
  }
};
using WindowMap = std::map<cv::Rect, double, RectLess>;

WindowMap ToMap(const std::vector<HogWindow> &windows) {
  WindowMap m;
  for (const auto &w : windows)
    m[w.box] = w.score;
  return m;
}

// Every window one side finds clearly above the threshold (by `margin`) the
// other side finds at the same place with a score within `tolerance`. Returns
// how many windows were compared.
int ExpectSameWindows(const WindowMap &a, const WindowMap &b, double threshold,
                      double margin, double tolerance, const char *what) {
  int compared = 0;
  for (const auto *pair : {&a, &b}) {
    const WindowMap &one = *pair;
    const WindowMap &other = pair == &a ? b : a;
    for (const auto &[rect, score] : one) {
      if (score < threshold + margin)
        continue;
      auto it = other.find(rect);
      ++compared;
      if (it == other.end()) {
        ADD_FAILURE() << what << ": window " << rect << " score " << score
                      << " found on one side only";
        continue;
      }
      EXPECT_NEAR(it->second, score, tolerance) << what << ": window " << rect;
    }
  }
  return compared;
}

TEST(DetectHog, TwinDescriptorMatchesOpenCv) {
  cv::Mat img = LoadImage("person.jpg");
  cv::HOGDescriptor
      hog; // the people detector's layout: 64x128, 16/8/8, 9 bins, sqrt gamma
  for (cv::Point at : {cv::Point(0, 0), cv::Point(180, 90), cv::Point(400, 250),
                       cv::Point(img.cols - 64, img.rows - 128)}) {
    cv::Mat window = img(cv::Rect(at, cv::Size(64, 128))).clone();
    std::vector<float> expected;
    hog.compute(window, expected, cv::Size(8, 8), cv::Size(0, 0));
    std::vector<float> got = detail::HogTwinDescriptor(window);
    ASSERT_EQ(expected.size(), static_cast<size_t>(hog::kDescriptorSize));
    ASSERT_EQ(got.size(), expected.size());
    double max_diff = 0;
    for (size_t i = 0; i < got.size(); ++i)
      max_diff = std::max(max_diff, std::abs(double(got[i]) - expected[i]));
    EXPECT_LT(max_diff, 2e-3) << "window at " << at;
  }
}

TEST(DetectHog, TwinWindowsMatchOpenCvAtOneScale) {
  HogSearch search;
  search.scale = 1.0; // one pyramid level: no resampling, so the windows must
                      // agree tightly
  search.hit_threshold = -1.0; // low, so there are many windows to compare
  size_t total = 0;
  for (const char *name : {"person.jpg", "dog.jpg", "basketball1.png"}) {
    cv::Mat img = LoadImage(name);
    WindowMap cv_windows = ToMap(detail::HogOpenCvWindows(img, search));
    WindowMap twin = ToMap(detail::HogTwinWindows(img, search));
    total += cv_windows.size();
    int compared = ExpectSameWindows(cv_windows, twin, search.hit_threshold,
                                     0.01, 0.01, name);
    EXPECT_GE(compared, static_cast<int>(cv_windows.size()) - 2) << name;
  }
  EXPECT_GT(total, 10u);
}

TEST(DetectHog, TwinWindowsMatchOpenCvOverThePyramid) {
  // Pyramid levels are resampled by each side's own bilinear resize (OpenCV's
  // is fixed-point), so scores differ a little more on the scaled levels.
  HogSearch search;
  cv::Mat img = LoadImage("person.jpg");
  WindowMap cv_windows = ToMap(detail::HogOpenCvWindows(img, search));
  WindowMap twin = ToMap(detail::HogTwinWindows(img, search));
  ASSERT_GT(cv_windows.size(), 3u);
  int compared = ExpectSameWindows(cv_windows, twin, search.hit_threshold, 0.15,
                                   0.15, "person.jpg pyramid");
  EXPECT_GT(compared, 0);
}

TEST(DetectHog, PyramidScalesFollowOpenCv) {
  std::vector<double> scales =
      detail::HogPyramidScales(cv::Size(64, 128), HogSearch{});
  EXPECT_EQ(scales, std::vector<double>{1.0});
  scales = detail::HogPyramidScales(cv::Size(200, 200), HogSearch{});
  ASSERT_FALSE(scales.empty());
  EXPECT_LE(hog::ScaledSize(200, scales.back()), 200);
  EXPECT_GE(hog::ScaledSize(200, scales.back()), 128);
  EXPECT_LT(hog::ScaledSize(200, scales.back() * 1.05), 128);
  EXPECT_TRUE(detail::HogPyramidScales(cv::Size(63, 500), HogSearch{}).empty());
}

TEST(DetectHog, GroupingMatchesOpenCv) {
  for (const char *name : {"person.jpg", "dog.jpg", "basketball1.png"}) {
    SCOPED_TRACE(name);
    cv::Mat img = LoadImage(name);
    std::vector<HogWindow> raw = detail::HogOpenCvWindows(img, HogSearch{});
    std::vector<cv::Rect> rects;
    std::vector<double> weights;
    for (const auto &w : raw) {
      rects.push_back(w.box);
      weights.push_back(w.score);
    }
    cv::HOGDescriptor().groupRectangles(rects, weights, 2, 0.2);
    std::vector<HogWindow> grouped = detail::GroupHogWindows(raw, 2);
    ASSERT_EQ(grouped.size(), rects.size());
    WindowMap ours = ToMap(grouped);
    for (size_t i = 0; i < rects.size(); ++i) {
      ASSERT_TRUE(ours.count(rects[i])) << rects[i];
      EXPECT_DOUBLE_EQ(ours[rects[i]], weights[i]);
    }
  }
}

struct ImageCase {
  const char *image;
  size_t people; // grouped detections at OpenCV's default threshold (SVM margin
                 // 0, groups of > 2)
};

class DetectHogImages : public ::testing::TestWithParam<
                            std::tuple<ImageCase, detail::HogBackend>> {};

TEST_P(DetectHogImages, FindsThePeopleOpenCvFinds) {
  const auto &[c, backend] = GetParam();
  cv::Mat img = LoadImage(c.image);
  auto detector = detail::MakeHogDetector(backend, HogSearch{});
  auto result = detector->Detect(img, cv::Rect(0, 0, img.cols, img.rows));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->size(), c.people) << c.image;
  for (const Detection &d : *result) {
    EXPECT_EQ(d.label, "person");
    EXPECT_GE(d.score, 0.5f);
    EXPECT_LE(d.score, 1.0f);
    EXPECT_EQ(d.box & cv::Rect(0, 0, img.cols, img.rows), d.box);
  }
}

// dog.jpg: one false positive at the default threshold (margin 0), as OpenCV's
// own detector reports.
INSTANTIATE_TEST_SUITE_P(
    DetectHog, DetectHogImages,
    ::testing::Combine(::testing::Values(ImageCase{"person.jpg", 1},
                                         ImageCase{"horses.jpg", 0},
                                         ImageCase{"dog.jpg", 1}),
                       ::testing::Values(detail::HogBackend::kOpenCv,
                                         detail::HogBackend::kTwin)));

TEST(DetectHog, PersonBoxIsWhereThePersonStands) {
  cv::Mat img = LoadImage("person.jpg");
  auto detector =
      detail::MakeHogDetector(detail::HogBackend::kOpenCv, HogSearch{});
  auto result = detector->Detect(img, cv::Rect(0, 0, img.cols, img.rows));
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->size(), 1u);
  const cv::Rect box = result->front().box;
  // The person stands left of centre, roughly x 180..280 of the 640x424 image.
  EXPECT_GT(box.height, box.width);
  const cv::Point centre = (box.tl() + box.br()) / 2;
  EXPECT_GT(centre.x, 120);
  EXPECT_LT(centre.x, 340);
}

TEST(DetectHog, RegionBoxesComeBackInFrameCoordinates) {
  cv::Mat img = LoadImage("person.jpg");
  auto detector =
      detail::MakeHogDetector(detail::HogBackend::kOpenCv, HogSearch{});
  auto whole = detector->Detect(img, cv::Rect(0, 0, img.cols, img.rows));
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(whole->size(), 1u);
  // The same picture inside a larger black frame, searched in a region around
  // it.
  cv::Mat frame(img.rows + 200, img.cols + 300, CV_8UC3, cv::Scalar(0, 0, 0));
  img.copyTo(frame(cv::Rect(300, 200, img.cols, img.rows)));
  auto in_region =
      detector->Detect(frame, cv::Rect(300, 200, img.cols, img.rows));
  ASSERT_TRUE(in_region.ok());
  ASSERT_EQ(in_region->size(), 1u);
  EXPECT_EQ(in_region->front().box, whole->front().box + cv::Point(300, 200));
  // A region outside the frame finds nothing and fails nothing.
  auto outside = detector->Detect(frame, cv::Rect(5000, 5000, 100, 100));
  ASSERT_TRUE(outside.ok());
  EXPECT_TRUE(outside->empty());
  EXPECT_FALSE(detector->Detect(cv::Mat(), cv::Rect(0, 0, 10, 10)).ok());
}

TEST(DetectDetector, FactoryPicksTypeAndDevice) {
  config::DetectorConfig cfg;
  cfg.device = "cpu";
  auto cpu = CreateDetector(cfg, 1);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  EXPECT_EQ((*cpu)->type(), "hog");
  EXPECT_EQ((*cpu)->device(), Device::kCpu);

  cfg.device = "auto";
  auto fallback = CreateDetector(cfg, 0);
  ASSERT_TRUE(fallback.ok());
  EXPECT_EQ((*fallback)->device(), Device::kCpu);

  cfg.device = "cuda";
  auto no_gpu = CreateDetector(cfg, 0);
  ASSERT_FALSE(no_gpu.ok());
  EXPECT_EQ(no_gpu.status().code(), StatusCode::kFailedPrecondition);

  cfg.device = "gpu";
  EXPECT_EQ(CreateDetector(cfg, 0).status().code(),
            StatusCode::kInvalidArgument);
  cfg.device = "auto";
  cfg.type = "yolo";
  EXPECT_EQ(CreateDetector(cfg, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DeviceName(Device::kCuda), "cuda");
  EXPECT_EQ(DeviceName(Device::kCpu), "cpu");
}

TEST(DetectDetector, AutoUsesCudaOnlyWhenBuiltWithIt) {
  config::DetectorConfig cfg;
  auto det = CreateDetector(cfg, 1);
  ASSERT_TRUE(det.ok());
#if EDGED_HAVE_CUDA
  EXPECT_EQ((*det)->device(), Device::kCuda);
#else
  EXPECT_EQ((*det)->device(), Device::kCpu);
#endif
}

#if EDGED_HAVE_CUDA
TEST(DetectHogCuda, KernelsFindTheTwinsWindows) {
  if (CudaDeviceCount() == 0)
    GTEST_SKIP() << "no CUDA device on this machine";
  for (const char *name : {"person.jpg", "dog.jpg", "basketball1.png"}) {
    cv::Mat img = LoadImage(name);
    HogSearch search;
    search.hit_threshold = -0.5;
    auto gpu = detail::HogCudaWindows(img, search);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    WindowMap twin = ToMap(detail::HogTwinWindows(img, search));
    WindowMap cuda = ToMap(*gpu);
    int compared =
        ExpectSameWindows(twin, cuda, search.hit_threshold, 1e-3, 1e-3, name);
    EXPECT_GE(compared, static_cast<int>(twin.size()) - 2) << name;
  }
}

TEST(DetectHogCuda, DetectorOnCudaFindsThePerson) {
  if (CudaDeviceCount() == 0)
    GTEST_SKIP() << "no CUDA device on this machine";
  cv::Mat img = LoadImage("person.jpg");
  auto detector =
      detail::MakeHogDetector(detail::HogBackend::kCuda, HogSearch{});
  auto result = detector->Detect(img, cv::Rect(0, 0, img.cols, img.rows));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->size(), 1u);
}
#else
TEST(DetectHogCuda, KernelsFindTheTwinsWindows) {
  GTEST_SKIP() << "built without CUDA (-DEDGED_CUDA=OFF)";
}
#endif

} // namespace
} // namespace edged::detect
