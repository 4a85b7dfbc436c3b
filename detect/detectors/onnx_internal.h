// Internals of the ONNX detector that tests reach: letterboxing, output
// decoding per format, class-wise NMS and the labelmap, each a pure function.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

#include "base/status.h"
#include "config/config.h"
#include "detect/detectors/detector.h"

namespace edged::detect::detail {

enum class OnnxFormat {
  kYoloV5, // [1, N, 5 + classes]: cx, cy, w, h (input pixels), objectness,
           // class scores
  kYoloV8, // [1, 4 + classes, N]: cx, cy, w, h (input pixels), class scores
  kSsd, // [1, 1, N, 7]: image id, class id, score, x1, y1, x2, y2 (0..1 of the
        // input)
};
StatusOr<OnnxFormat> ParseOnnxFormat(std::string_view name);

// The image scaled to fit a square model input with its aspect ratio kept,
// padded with grey (114).
struct Letterbox {
  double scale = 1; // input pixels per image pixel
  int pad_x = 0;
  int pad_y = 0;
};
Letterbox ComputeLetterbox(cv::Size image, int input_size);
cv::Mat LetterboxImage(const cv::Mat &bgr, int input_size,
                       const Letterbox &box);
// A box in model input pixels back to image pixels.
cv::Rect2f UnLetterbox(const cv::Rect2f &input_box, const Letterbox &box);

struct RawDetection {
  int class_id = 0;
  float score = 0;
  cv::Rect2f box; // model input pixels
};

// Decodes one output tensor; detections below min_score are dropped. A tensor
// whose shape does not fit the format is an InvalidArgument that names both.
StatusOr<std::vector<RawDetection>> DecodeOnnxOutput(const cv::Mat &output,
                                                     OnnxFormat format,
                                                     int input_size,
                                                     float min_score);

// Greedy non-maximum suppression per class: the best box wins, boxes of the
// same class overlapping it by more than iou_threshold go. Result sorted by
// score, best first.
std::vector<RawDetection> ClasswiseNms(std::vector<RawDetection> detections,
                                       float iou_threshold);

// One label per line; blank lines keep their index (label "" is skipped by the
// detector); a leading
// "<id> " or "<id>: " is accepted and sets the index, as in Frigate/TF
// labelmaps.
StatusOr<std::vector<std::string>>
ReadLabelmap(const std::filesystem::path &path);

StatusOr<std::unique_ptr<Detector>>
CreateOnnxDetector(const config::DetectorConfig &config);

} // namespace edged::detect::detail
