// Motion detector on vtest.avi (pedestrians): motion on moving people, none on a still frame, masks,
// lightning, the CPU path against an independent reference written with the OpenCV calls Frigate
// makes, and the CUDA kernels against the CPU path (skipped without a GPU).
#include <algorithm>
#include <cstdio>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "detect/motion/motion_detector.h"
#include "detect/motion/motion_internal.h"
#include "detect/motion/motion_math.h"

namespace edged::detect {
namespace {

constexpr int kFrames = 120;

// The first kFrames luma planes of vtest.avi (BGR -> I420 Y), read once for the suite.
const std::vector<cv::Mat>& Frames() {
  static const std::vector<cv::Mat> frames = [] {
    std::vector<cv::Mat> out;
    cv::VideoCapture cap(std::string(EDGED_DATA_DIR) + "/video/vtest.avi", cv::CAP_FFMPEG);
    cv::Mat bgr, yuv;
    while (static_cast<int>(out.size()) < kFrames && cap.read(bgr)) {
      cv::cvtColor(bgr, yuv, cv::COLOR_BGR2YUV_I420);
      out.push_back(yuv.rowRange(0, bgr.rows).clone());
    }
    return out;
  }();
  return frames;
}

std::vector<std::vector<cv::Rect>> RunAll(MotionDetector& d, const std::vector<cv::Mat>& frames) {
  std::vector<std::vector<cv::Rect>> out;
  for (const auto& f : frames) {
    auto boxes = d.Detect(f);
    EXPECT_TRUE(boxes.ok()) << boxes.status().ToString();
    out.emplace_back(boxes->begin(), boxes->end());
  }
  return out;
}

TEST(DetectMotion, FindsMovingPeople) {
  ASSERT_EQ(Frames().size(), static_cast<size_t>(kFrames));
  auto d = MotionDetector::Create(Frames()[0].size(), config::MotionConfig{});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->motion_size(), cv::Size(133, 100));
  auto boxes = RunAll(**d, Frames());
  EXPECT_FALSE((*d)->calibrating());
  int with_motion = 0;
  for (int i = 40; i < kFrames; ++i) {
    with_motion += boxes[i].empty() ? 0 : 1;
    for (const auto& b : boxes[i]) {
      EXPECT_GE(b.x, 0);
      EXPECT_GE(b.y, 0);
      EXPECT_LE(b.x + b.width, 768);
      EXPECT_LE(b.y + b.height, 576);
      EXPECT_GT(b.area(), 0);
    }
  }
  EXPECT_GE(with_motion, (kFrames - 40) * 9 / 10) << "people walk through every frame of vtest.avi";
}

TEST(DetectMotion, StillFrameHasNoMotion) {
  auto d = MotionDetector::Create(Frames()[0].size(), config::MotionConfig{});
  ASSERT_TRUE(d.ok());
  // After the moving scene, the same frame over and over: the contrast history (50 frames) and the
  // running average settle, and from then on nothing moves.
  auto moving = RunAll(**d, Frames());
  std::vector<cv::Mat> still(400, Frames()[kFrames - 1].clone());
  auto boxes = RunAll(**d, still);
  int first_still = -1;
  for (int i = 0; i < 400; ++i) {
    if (boxes[i].empty() && first_still < 0) first_still = i;
    if (first_still >= 0) {
      EXPECT_TRUE(boxes[i].empty()) << "motion again at still frame " << i;
    }
  }
  EXPECT_GE(first_still, 0);
  // A person who stops is absorbed into the average at frame_alpha (1% a frame), as in Frigate.
  EXPECT_LT(first_still, 300) << "the scene should settle";
  std::printf("still scene settled after %d frames\n", first_still);
  EXPECT_FALSE((*d)->calibrating());
  EXPECT_EQ(cv::countNonZero((*d)->last_mask()), 0);
}

TEST(DetectMotion, MaskRemovesMotionInside) {
  const cv::Size size = Frames()[0].size();
  config::MotionConfig masked;
  // Left half of the frame.
  masked.mask.push_back({{0, 0}, {384, 0}, {384, 576}, {0, 576}});
  auto plain = MotionDetector::Create(size, config::MotionConfig{});
  auto with_mask = MotionDetector::Create(size, masked);
  ASSERT_TRUE(plain.ok() && with_mask.ok());
  auto a = RunAll(**plain, Frames());
  auto b = RunAll(**with_mask, Frames());
  int left_plain = 0, left_masked = 0;
  for (int i = 40; i < kFrames; ++i) {
    for (const auto& r : a[i]) left_plain += r.x + r.width < 370 ? 1 : 0;
    for (const auto& r : b[i]) {
      left_masked += r.x + r.width < 370 ? 1 : 0;
      // Dilation can reach one motion pixel (5.76 px) into the masked half, no further.
      EXPECT_GE(r.x + r.width, 384 - 12) << "box " << r << " lies inside the mask";
    }
  }
  EXPECT_GT(left_plain, 20) << "vtest.avi has people in the left half";
  EXPECT_EQ(left_masked, 0);

  config::MotionConfig bad;
  bad.mask.push_back({{0, 0}, {10, 10}});
  auto invalid = MotionDetector::Create(size, bad);
  ASSERT_FALSE(invalid.ok());
  EXPECT_NE(invalid.status().message().find("at least 3"), std::string_view::npos);
}

TEST(DetectMotion, LightningIsNotReportedAsBoxes) {
  auto d = MotionDetector::Create(Frames()[0].size(), config::MotionConfig{});
  ASSERT_TRUE(d.ok());
  cv::Mat still = Frames()[50];
  for (int i = 0; i < 60; ++i) ASSERT_TRUE((*d)->Detect(still).ok());
  ASSERT_FALSE((*d)->calibrating());
  // A flash: the whole picture inverted for one frame.
  cv::Mat flash = 255 - still;
  auto boxes = (*d)->Detect(flash);
  ASSERT_TRUE(boxes.ok());
  EXPECT_TRUE((*d)->last_was_lightning()) << "fraction " << (*d)->last_motion_fraction();
  EXPECT_TRUE(boxes->empty());
  EXPECT_TRUE((*d)->calibrating());
  // Back to the still scene: the detector settles again without reporting motion for long.
  int frames_with_boxes = 0;
  for (int i = 0; i < 40; ++i) {
    auto b = (*d)->Detect(still);
    ASSERT_TRUE(b.ok());
    frames_with_boxes += b->empty() ? 0 : 1;
  }
  EXPECT_FALSE((*d)->calibrating());
  EXPECT_LT(frames_with_boxes, 40);
}

TEST(DetectMotion, RejectsBadInput) {
  config::MotionConfig too_tall;
  too_tall.frame_height = 1000;
  EXPECT_FALSE(MotionDetector::Create({768, 576}, too_tall).ok());
  EXPECT_FALSE(MotionDetector::Create({0, 0}, config::MotionConfig{}).ok());
  auto d = MotionDetector::Create({768, 576}, config::MotionConfig{});
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE((*d)->Detect(cv::Mat(100, 100, CV_8UC1)).ok());
  EXPECT_FALSE((*d)->Detect(cv::Mat(576, 768, CV_8UC3)).ok());
#if !defined(EDGED_HAVE_CUDA)
  EXPECT_FALSE(MotionDetector::Create({768, 576}, config::MotionConfig{}, MotionBackend::kCuda).ok());
#endif
}

// ---------------------------------------------------------------------------------------------------
// An independent reference: improved_motion.py transcribed with the OpenCV calls it makes, numpy's
// percentile by sorting, scipy's Gaussian as plain loops. The running average uses one fused multiply
// add per pixel as OpenCV's vector body does (its scalar tail for the last len % 32 pixels contracts
// the other way round; the reference keeps one formula so the comparison is exact).
class ReferenceMotion {
 public:
  explicit ReferenceMotion(cv::Size frame, const config::MotionConfig& c) : frame_(frame), c_(c) {
    motion_ = cv::Size(c.frame_height * frame.width / frame.height, c.frame_height);
    avg_ = cv::Mat::zeros(motion_, CV_32F);
    for (int i = 0; i < 50; ++i) history_.push_back({0, 255});
  }

  static uint8_t Percentile(std::vector<uint8_t> v, double q) {
    std::sort(v.begin(), v.end());
    const double vi = static_cast<double>(v.size() - 1) * q;
    const size_t lo = static_cast<size_t>(std::floor(vi));
    const double t = vi - static_cast<double>(lo);
    const double a = v[lo], b = v[std::min(lo + 1, v.size() - 1)];
    return static_cast<uint8_t>(t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t);
  }

  std::vector<cv::Rect> Detect(const cv::Mat& luma) {
    cv::Mat r;
    cv::resize(luma, r, motion_, 0, 0, cv::INTER_NEAREST);
    std::vector<uint8_t> px(r.begin<uint8_t>(), r.end<uint8_t>());
    const uint8_t mn = Percentile(px, 0.04), mx = Percentile(px, 0.96);
    if (mn < mx) {
      history_[index_] = {mn, mx};
      index_ = (index_ + 1) % 50;
      double smin = 0, smax = 0;
      for (auto [a, b] : history_) {
        smin += a;
        smax += b;
      }
      const double lo = smin / 50, hi = smax / 50;
      for (auto& v : px) {
        const double c = std::clamp(static_cast<double>(v), lo, hi);
        v = static_cast<uint8_t>(((c - lo) / (hi - lo)) * 255);
      }
    }
    const int w = motion_.width, h = motion_.height;
    auto at = [&](const std::vector<uint8_t>& m, int y, int x) {
      return static_cast<double>(m[std::clamp(y, 0, h - 1) * w + std::clamp(x, 0, w - 1)]);
    };
    const double w0 = 0x1.ceb51ca22d9f7p-2, w1 = 0x1.18a571aee9305p-2;
    std::vector<uint8_t> v(px.size()), blurred(px.size());
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) v[y * w + x] = static_cast<uint8_t>(at(px, y, x) * w0 + (at(px, y - 1, x) + at(px, y + 1, x)) * w1);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) blurred[y * w + x] = static_cast<uint8_t>(at(v, y, x) * w0 + (at(v, y, x - 1) + at(v, y, x + 1)) * w1);
    blurred_ = cv::Mat(motion_, CV_8U, blurred.data()).clone();
    cv::Mat avg_u8, delta, thresh, dilated;
    cv::convertScaleAbs(avg_, avg_u8);
    cv::absdiff(blurred_, avg_u8, delta);
    cv::threshold(delta, thresh, c_.threshold, 255, cv::THRESH_BINARY);
    cv::dilate(thresh, dilated, cv::Mat());
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(dilated, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    std::vector<cv::Rect> boxes;
    double total = 0;
    const double f = static_cast<double>(frame_.height) / c_.frame_height;
    for (const auto& c : contours) {
      const double a = cv::contourArea(c);
      total += a;
      if (a > c_.contour_area) {
        const cv::Rect b = cv::boundingRect(c);
        const int x1 = static_cast<int>(b.x * f), y1 = static_cast<int>(b.y * f);
        boxes.emplace_back(x1, y1, static_cast<int>((b.x + b.width) * f) - x1, static_cast<int>((b.y + b.height) * f) - y1);
      }
    }
    const double pct = total / (w * h);
    if (pct < 0.05 && boxes.size() <= 4) calibrating_ = false;
    if (calibrating_ || pct > c_.lightning_threshold) calibrating_ = true;
    const double alpha = calibrating_ ? 0.2 : c_.frame_alpha;
    auto accumulate = [&] {
      const float a = static_cast<float>(alpha), b = static_cast<float>(1.0 - alpha);
      for (int i = 0; i < w * h; ++i) {
        float& d = avg_.ptr<float>()[i];
        d = std::fma(d, b, static_cast<float>(blurred_.data[i]) * a);
      }
    };
    if (!boxes.empty()) {
      if (++motion_frames_ >= 10) accumulate();
    } else {
      accumulate();
      motion_frames_ = 0;
    }
    if (pct > c_.lightning_threshold) boxes.clear();
    return boxes;
  }

  cv::Mat blurred_, avg_;

 private:
  cv::Size frame_, motion_;
  config::MotionConfig c_;
  std::vector<std::pair<uint8_t, uint8_t>> history_;
  int index_ = 0;
  bool calibrating_ = true;
  int motion_frames_ = 0;
};

TEST(DetectMotion, CpuMatchesReferenceMath) {
  const cv::Size size = Frames()[0].size();
  for (int threshold : {30, 15}) {
    config::MotionConfig c;
    c.threshold = threshold;
    ReferenceMotion ref(size, c);
    auto d = MotionDetector::Create(size, c);
    ASSERT_TRUE(d.ok());
    int total_boxes = 0;
    for (int i = 0; i < kFrames; ++i) {
      auto expected = ref.Detect(Frames()[i]);
      auto got = (*d)->Detect(Frames()[i]);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(std::vector<cv::Rect>(got->begin(), got->end()), expected) << "frame " << i;
      total_boxes += static_cast<int>(expected.size());
    }
    EXPECT_GT(total_boxes, kFrames * 2);
  }
}

TEST(DetectMotion, PixelStagesMatchReference) {
  const cv::Size size = Frames()[0].size();
  config::MotionConfig c;
  ReferenceMotion ref(size, c);
  auto geometry = detail::MakeMotionGeometry(size, c);
  ASSERT_TRUE(geometry.ok());
  auto pixels = detail::MakeCpuMotionPixels(*geometry);
  for (int i = 0; i < 30; ++i) {
    ref.Detect(Frames()[i]);
    bool any = false;
    ASSERT_TRUE(pixels->Run(Frames()[i], &any).ok());
    cv::Mat blurred = pixels->Blurred();
    ASSERT_EQ(cv::countNonZero(blurred != ref.blurred_), 0) << "frame " << i;
    // The blurred frame does not depend on the running average, so any weight keeps the test exact.
    ASSERT_TRUE(pixels->Accumulate(0.2).ok());
  }
}

TEST(DetectMotion, FusedMulAddIsFma) {
  // The portable single-rounding emulation agrees with the C library's fmaf, including sums of very
  // different magnitudes where a plain double sum would round twice.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> value(0.0f, 255.0f);
  std::uniform_int_distribution<int> exponent(-140, 8);
  for (int i = 0; i < 200000; ++i) {
    const float x = i % 2 ? value(rng) : std::ldexp(value(rng), exponent(rng));
    const float y = i % 3 ? 0.8f : 0.99f;
    const float z = static_cast<float>(rng() % 256) * (i % 5 ? 0.2f : 0.01f);
    ASSERT_EQ(motion::FusedMulAdd(x, y, z), std::fmaf(x, y, z)) << x << " " << y << " " << z;
  }
  for (float v : {0.5f, 1.5f, 2.5f, 254.5f, 255.5f, 300.0f, 3.49999f}) {
    cv::Mat f(1, 1, CV_32F, cv::Scalar(v)), u;
    cv::convertScaleAbs(f, u);
    EXPECT_EQ(motion::RoundToU8(v), u.at<uint8_t>(0)) << v;
  }
}

TEST(DetectMotion, FixedPointBlurEqualsScipy) {
  // Every input a blur tap can see: a uint8 centre and the sum of two uint8 neighbours.
  for (int centre = 0; centre <= 255; ++centre) {
    for (int side_sum = 0; side_sum <= 510; ++side_sum) {
      ASSERT_EQ(motion::BlurTap(centre, side_sum), motion::BlurTapFloat64(centre, side_sum))
          << centre << " " << side_sum;
    }
  }
}

TEST(DetectMotion, CudaMatchesCpu) {
  if (!CudaMotionAvailable()) GTEST_SKIP() << "no CUDA build or no CUDA device";
  const cv::Size size = Frames()[0].size();
  for (bool mask : {false, true}) {
    config::MotionConfig c;
    if (mask) c.mask.push_back({{100, 50}, {500, 80}, {300, 400}});
    auto cpu = MotionDetector::Create(size, c, MotionBackend::kCpu);
    auto gpu = MotionDetector::Create(size, c, MotionBackend::kCuda);
    ASSERT_TRUE(cpu.ok() && gpu.ok()) << gpu.status().ToString();
    for (int i = 0; i < kFrames; ++i) {
      auto a = (*cpu)->Detect(Frames()[i]);
      auto b = (*gpu)->Detect(Frames()[i]);
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(std::vector<cv::Rect>(a->begin(), a->end()), std::vector<cv::Rect>(b->begin(), b->end()))
          << "frame " << i;
      ASSERT_EQ(cv::countNonZero((*cpu)->last_mask() != (*gpu)->last_mask()), 0) << "frame " << i;
      ASSERT_EQ((*cpu)->calibrating(), (*gpu)->calibrating());
    }
  }
}

TEST(DetectMotion, CudaPixelStagesMatchCpu) {
#if defined(EDGED_HAVE_CUDA)
  if (!CudaMotionAvailable()) GTEST_SKIP() << "no CUDA device";
  const cv::Size size = Frames()[0].size();
  auto g = detail::MakeMotionGeometry(size, config::MotionConfig{});
  ASSERT_TRUE(g.ok());
  auto cpu = detail::MakeCpuMotionPixels(*g);
  auto gpu = detail::MakeCudaMotionPixels(*g);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  for (int i = 0; i < 60; ++i) {
    bool any_a = false, any_b = false;
    ASSERT_TRUE(cpu->Run(Frames()[i], &any_a).ok());
    ASSERT_TRUE((*gpu)->Run(Frames()[i], &any_b).ok());
    EXPECT_EQ(any_a, any_b);
    ASSERT_EQ(cv::countNonZero(cpu->Blurred() != (*gpu)->Blurred()), 0) << "frame " << i;
    const double alpha = i % 3 == 0 ? 0.2 : 0.01;
    ASSERT_TRUE(cpu->Accumulate(alpha).ok());
    ASSERT_TRUE((*gpu)->Accumulate(alpha).ok());
    cv::Mat diff = cpu->Average() != (*gpu)->Average();
    ASSERT_EQ(cv::countNonZero(diff), 0) << "running average differs at frame " << i;
  }
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

}  // namespace
}  // namespace edged::detect
