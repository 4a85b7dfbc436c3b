// ONNX detector: tiny real models (tests/fixtures/onnx, made by make_models.py)
// run through cv::dnn, so decoding, letterbox mapping, score filtering and
// class-wise NMS are exercised end to end.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "detect/detectors/detector.h"
#include "detect/detectors/onnx_internal.h"

namespace edged::detect {
namespace {

using detail::RawDetection;

const std::string kOnnxDir = std::string(EDGED_FIXTURES_DIR) + "/onnx/";

config::DetectorConfig OnnxConfig(const std::string &model,
                                  const std::string &format) {
  config::DetectorConfig cfg;
  cfg.type = "onnx";
  cfg.device = "cpu";
  cfg.model = kOnnxDir + model;
  cfg.labelmap = kOnnxDir + "labelmap.txt";
  cfg.input_size = 64;
  cfg.output_format = format;
  return cfg;
}

struct FormatCase {
  const char *model;
  const char *format;
};

class DetectOnnxFormats : public ::testing::TestWithParam<FormatCase> {};

TEST_P(DetectOnnxFormats, DecodesLetterboxesAndSuppresses) {
  auto detector =
      CreateDetector(OnnxConfig(GetParam().model, GetParam().format), 0);
  ASSERT_TRUE(detector.ok()) << detector.status().ToString();
  EXPECT_EQ((*detector)->type(), "onnx");
  EXPECT_EQ((*detector)->device(), Device::kCpu);
  // A 128x64 region at (10, 20) of a larger frame: scale 0.5 into the 64x64
  // input, 16 px bars above and below. The model's scene (make_models.py):
  // person 0.9 at input (24,20 16x24), a second person 0.8 one pixel right
  // (suppressed by NMS), a car 0.7 on that same box (other class: kept), a dog
  // 0.1 (below the score floor).
  cv::Mat frame(200, 300, CV_8UC3, cv::Scalar(40, 80, 120));
  auto result = (*detector)->Detect(frame, cv::Rect(10, 20, 128, 64));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->size(), 2u);
  EXPECT_EQ((*result)[0].label, "person");
  EXPECT_NEAR((*result)[0].score, 0.9f, 1e-5);
  EXPECT_EQ((*result)[0].box, cv::Rect(10 + 48, 20 + 8, 32, 48));
  EXPECT_EQ((*result)[1].label, "car");
  EXPECT_NEAR((*result)[1].score, 0.7f, 1e-5);
  EXPECT_EQ((*result)[1].box, cv::Rect(10 + 50, 20 + 8, 32, 48));
}

INSTANTIATE_TEST_SUITE_P(
    DetectOnnx, DetectOnnxFormats,
    ::testing::Values(FormatCase{"yolov5_tiny.onnx", "yolov5"},
                      FormatCase{"yolov8_tiny.onnx", "yolov8"},
                      FormatCase{"ssd_tiny.onnx", "ssd"}));

TEST(DetectOnnx, OutputThatDoesNotFitTheFormatIsAClearError) {
  auto detector = CreateDetector(OnnxConfig("yolov5_tiny.onnx", "ssd"), 0);
  ASSERT_TRUE(detector.ok());
  cv::Mat frame(64, 64, CV_8UC3, cv::Scalar(0, 0, 0));
  auto result = (*detector)->Detect(frame, cv::Rect(0, 0, 64, 64));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("[1,4,8]"), std::string_view::npos)
      << result.status().ToString();
}

TEST(DetectOnnx, LetterboxKeepsAspectAndMapsBack) {
  struct Case {
    cv::Size image;
    int input;
    double scale;
    int pad_x, pad_y;
  };
  for (const Case &c :
       {Case{{128, 64}, 64, 0.5, 0, 16}, Case{{64, 128}, 64, 0.5, 16, 0},
        Case{{640, 480}, 320, 0.5, 0, 40}, Case{{100, 100}, 320, 3.2, 0, 0}}) {
    detail::Letterbox lb = detail::ComputeLetterbox(c.image, c.input);
    EXPECT_DOUBLE_EQ(lb.scale, c.scale) << c.image;
    EXPECT_EQ(lb.pad_x, c.pad_x) << c.image;
    EXPECT_EQ(lb.pad_y, c.pad_y) << c.image;
    cv::Mat img(c.image, CV_8UC3, cv::Scalar(255, 255, 255));
    cv::Mat boxed = detail::LetterboxImage(img, c.input, lb);
    EXPECT_EQ(boxed.size(), cv::Size(c.input, c.input));
    if (lb.pad_y > 0) {
      EXPECT_EQ(boxed.at<cv::Vec3b>(0, c.input / 2), cv::Vec3b(114, 114, 114));
    }
    EXPECT_EQ(boxed.at<cv::Vec3b>(c.input / 2, c.input / 2),
              cv::Vec3b(255, 255, 255));
    cv::Rect2f back =
        detail::UnLetterbox(cv::Rect2f(lb.pad_x, lb.pad_y, 10, 10), lb);
    EXPECT_NEAR(back.x, 0, 1e-4);
    EXPECT_NEAR(back.y, 0, 1e-4);
    EXPECT_NEAR(back.width, 10 / c.scale, 1e-3);
  }
}

TEST(DetectOnnx, ClasswiseNms) {
  std::vector<RawDetection> in = {
      {0, 0.6f, {0, 0, 10, 10}},   // loses to the 0.9 box of its class
      {0, 0.9f, {1, 0, 10, 10}},   // best
      {1, 0.5f, {1, 0, 10, 10}},   // other class, same place: kept
      {0, 0.7f, {50, 50, 10, 10}}, // same class, elsewhere: kept
      {0,
       0.8f,
       {6, 0, 10, 10}}, // IoU with the best = 5*10/(200-50) = 0.33: kept
  };
  std::vector<RawDetection> out = detail::ClasswiseNms(in, 0.45f);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);
  EXPECT_FLOAT_EQ(out[1].score, 0.8f);
  EXPECT_FLOAT_EQ(out[2].score, 0.7f);
  EXPECT_FLOAT_EQ(out[3].score, 0.5f);
  EXPECT_EQ(out[3].class_id, 1);
}

TEST(DetectOnnx, DecodeRejectsShapesAndFiltersScores) {
  int v8_shape[] = {1, 6, 2}; // cx cy w h, 2 classes, 2 anchors
  float v8_data[] = {10, 30, 20,   40,   4,     6,
                     4,  6,  0.3f, 0.9f, 0.95f, 0.1f}; // one row per feature
  cv::Mat v8(3, v8_shape, CV_32F, v8_data);
  auto decoded =
      detail::DecodeOnnxOutput(v8, detail::OnnxFormat::kYoloV8, 64, 0.5f);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_EQ((*decoded)[0].class_id, 1); // anchor 0: class 1 scores 0.95
  EXPECT_FLOAT_EQ((*decoded)[0].score, 0.95f);
  EXPECT_EQ((*decoded)[0].box, cv::Rect2f(8, 18, 4, 4));
  EXPECT_EQ((*decoded)[1].class_id, 0); // anchor 1: class 0 scores 0.9
  EXPECT_FALSE(
      detail::DecodeOnnxOutput(v8, detail::OnnxFormat::kSsd, 64, 0.5f).ok());
  EXPECT_FALSE(detail::DecodeOnnxOutput(cv::Mat(2, 2, CV_8U),
                                        detail::OnnxFormat::kYoloV5, 64, 0.5f)
                   .ok());
  EXPECT_FALSE(detail::ParseOnnxFormat("yolov7").ok());
}

TEST(DetectOnnx, LabelmapFormats) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "edged_labelmap";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "plain.txt") << "person\nbicycle\n\ncar\n";
    std::ofstream(dir / "ids.txt") << "0 person\n2: car  \n";
  }
  auto plain = detail::ReadLabelmap(dir / "plain.txt");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, (std::vector<std::string>{"person", "bicycle", "", "car"}));
  auto ids = detail::ReadLabelmap(dir / "ids.txt");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"person", "", "car"}));
  EXPECT_EQ(detail::ReadLabelmap(dir / "missing.txt").status().code(),
            StatusCode::kNotFound);
}

TEST(DetectOnnx, FactoryRejectsBadConfigWithoutCrashing) {
  auto cfg = OnnxConfig("missing.onnx", "yolov8");
  EXPECT_EQ(CreateDetector(cfg, 0).status().code(), StatusCode::kNotFound);
  cfg = OnnxConfig("yolov8_tiny.onnx", "yolo");
  EXPECT_EQ(CreateDetector(cfg, 0).status().code(),
            StatusCode::kInvalidArgument);
  cfg = OnnxConfig("yolov8_tiny.onnx", "yolov8");
  cfg.device = "cuda";
  EXPECT_EQ(CreateDetector(cfg, 1).status().code(),
            StatusCode::kFailedPrecondition);
  const auto garbage =
      std::filesystem::path(testing::TempDir()) / "garbage.onnx";
  std::ofstream(garbage) << "this is not a protobuf";
  cfg = OnnxConfig("yolov8_tiny.onnx", "yolov8");
  cfg.model = garbage.string();
  auto bad = CreateDetector(cfg, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  cfg.model.clear();
  EXPECT_FALSE(CreateDetector(cfg, 0).ok());
}

} // namespace
} // namespace edged::detect
