// The ONNX detector: letterbox the region into the model's square input, run it
// through OpenCV DNN on the CPU, decode YOLOv5 / YOLOv8 / SSD outputs, drop low
// scores, suppress overlaps per class, map the boxes back to the frame and name
// them from the labelmap.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "detect/detectors/onnx_internal.h"

namespace edged::detect::detail {
namespace {

// Detections below this never leave the detector; the tracker's per-label
// min_score decides the rest.
constexpr float kMinScore = 0.25f;
constexpr float kNmsIou = 0.45f;

float Iou(const cv::Rect2f &a, const cv::Rect2f &b) {
  float inter = (a & b).area();
  float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.f;
}

std::string ShapeText(const cv::Mat &m) {
  std::string s = "[";
  for (int i = 0; i < m.dims; ++i)
    s += (i ? "," : "") + std::to_string(m.size[i]);
  return s + "]";
}

class OnnxDetector final : public Detector {
public:
  OnnxDetector(cv::dnn::Net net, OnnxFormat format, int input_size,
               std::vector<std::string> labels)
      : net_(std::move(net)), format_(format), input_size_(input_size),
        labels_(std::move(labels)) {}

  std::string_view type() const override { return "onnx"; }
  Device device() const override { return Device::kCpu; }

  StatusOr<std::vector<Detection>> Detect(const cv::Mat &bgr,
                                          const cv::Rect &region) override {
    if (bgr.empty() || bgr.type() != CV_8UC3)
      return InvalidArgumentError("onnx: expected a non-empty 8-bit BGR frame");
    const cv::Rect roi = region & cv::Rect(0, 0, bgr.cols, bgr.rows);
    if (roi.empty())
      return std::vector<Detection>{};
    const Letterbox lb = ComputeLetterbox(roi.size(), input_size_);
    cv::Mat input = LetterboxImage(bgr(roi), input_size_, lb);
    std::vector<RawDetection> raw;
    try {
      cv::Mat blob = cv::dnn::blobFromImage(
          input, 1.0 / 255.0, cv::Size(input_size_, input_size_), cv::Scalar(),
          /*swapRB=*/true, /*crop=*/false);
      net_.setInput(blob);
      cv::Mat out = net_.forward();
      ASSIGN_OR_RETURN(raw,
                       DecodeOnnxOutput(out, format_, input_size_, kMinScore));
    } catch (const cv::Exception &e) {
      return InternalError(std::string("onnx: inference failed: ") + e.what());
    }
    std::vector<Detection> out;
    for (const RawDetection &d : ClasswiseNms(std::move(raw), kNmsIou)) {
      std::string label =
          d.class_id >= 0 && d.class_id < static_cast<int>(labels_.size())
              ? labels_[d.class_id]
              : "class_" + std::to_string(d.class_id);
      if (label.empty())
        continue;
      cv::Rect2f f = UnLetterbox(d.box, lb);
      cv::Rect box(cvRound(f.x) + roi.x, cvRound(f.y) + roi.y, cvRound(f.width),
                   cvRound(f.height));
      box &= cv::Rect(0, 0, bgr.cols, bgr.rows);
      if (box.empty())
        continue;
      out.push_back({std::move(label), d.score, box});
    }
    return out;
  }

private:
  cv::dnn::Net net_;
  OnnxFormat format_;
  int input_size_;
  std::vector<std::string> labels_;
};

} // namespace

StatusOr<OnnxFormat> ParseOnnxFormat(std::string_view name) {
  if (name == "yolov5")
    return OnnxFormat::kYoloV5;
  if (name == "yolov8")
    return OnnxFormat::kYoloV8;
  if (name == "ssd")
    return OnnxFormat::kSsd;
  return InvalidArgumentError("cameras.detector.output_format: '" +
                              std::string(name) +
                              "' is not one of yolov5, yolov8, ssd");
}

Letterbox ComputeLetterbox(cv::Size image, int input_size) {
  Letterbox lb;
  lb.scale = std::min(static_cast<double>(input_size) / image.width,
                      static_cast<double>(input_size) / image.height);
  int w = std::max(1, static_cast<int>(std::lround(image.width * lb.scale)));
  int h = std::max(1, static_cast<int>(std::lround(image.height * lb.scale)));
  lb.pad_x = (input_size - w) / 2;
  lb.pad_y = (input_size - h) / 2;
  return lb;
}

cv::Mat LetterboxImage(const cv::Mat &bgr, int input_size,
                       const Letterbox &box) {
  cv::Mat out(input_size, input_size, CV_8UC3, cv::Scalar(114, 114, 114));
  int w = std::max(1, static_cast<int>(std::lround(bgr.cols * box.scale)));
  int h = std::max(1, static_cast<int>(std::lround(bgr.rows * box.scale)));
  w = std::min(w, input_size - box.pad_x);
  h = std::min(h, input_size - box.pad_y);
  cv::resize(bgr, out(cv::Rect(box.pad_x, box.pad_y, w, h)), cv::Size(w, h), 0,
             0, cv::INTER_LINEAR);
  return out;
}

cv::Rect2f UnLetterbox(const cv::Rect2f &b, const Letterbox &box) {
  const float s = static_cast<float>(box.scale);
  return {(b.x - box.pad_x) / s, (b.y - box.pad_y) / s, b.width / s,
          b.height / s};
}

StatusOr<std::vector<RawDetection>> DecodeOnnxOutput(const cv::Mat &output,
                                                     OnnxFormat format,
                                                     int input_size,
                                                     float min_score) {
  if (output.type() != CV_32F)
    return InvalidArgumentError("onnx: output tensor is not float32");
  std::vector<RawDetection> out;
  auto bad_shape = [&](std::string_view expected) {
    return InvalidArgumentError("onnx: output shape " + ShapeText(output) +
                                " does not fit output_format " +
                                std::string(expected) +
                                "; check cameras.detector.output_format");
  };
  switch (format) {
  case OnnxFormat::kYoloV5: {
    if (output.dims != 3 || output.size[0] != 1 || output.size[2] < 6)
      return bad_shape("yolov5 [1,N,5+classes]");
    const int n = output.size[1], stride = output.size[2];
    const float *p = output.ptr<float>();
    for (int i = 0; i < n; ++i, p += stride) {
      const float obj = p[4];
      if (obj < min_score)
        continue;
      int best = 0;
      for (int c = 1; c < stride - 5; ++c) {
        if (p[5 + c] > p[5 + best])
          best = c;
      }
      const float score = obj * p[5 + best];
      if (score < min_score)
        continue;
      out.push_back({best, score,
                     cv::Rect2f(p[0] - p[2] / 2, p[1] - p[3] / 2, p[2], p[3])});
    }
    break;
  }
  case OnnxFormat::kYoloV8: {
    if (output.dims != 3 || output.size[0] != 1 || output.size[1] < 5)
      return bad_shape("yolov8 [1,4+classes,N]");
    const int rows = output.size[1], n = output.size[2];
    const float *p = output.ptr<float>();
    for (int i = 0; i < n; ++i) {
      int best = 0;
      for (int c = 1; c < rows - 4; ++c) {
        if (p[(4 + c) * n + i] > p[(4 + best) * n + i])
          best = c;
      }
      const float score = p[(4 + best) * n + i];
      if (score < min_score)
        continue;
      const float cx = p[i], cy = p[n + i], w = p[2 * n + i], h = p[3 * n + i];
      out.push_back({best, score, cv::Rect2f(cx - w / 2, cy - h / 2, w, h)});
    }
    break;
  }
  case OnnxFormat::kSsd: {
    if (output.dims != 4 || output.size[0] != 1 || output.size[1] != 1 ||
        output.size[3] != 7) {
      return bad_shape("ssd [1,1,N,7]");
    }
    const int n = output.size[2];
    const float *p = output.ptr<float>();
    const float s = static_cast<float>(input_size);
    for (int i = 0; i < n; ++i, p += 7) {
      if (p[0] < 0)
        break; // TF/Caffe SSD pads the list with image id -1
      if (p[2] < min_score)
        continue;
      out.push_back({static_cast<int>(p[1]), p[2],
                     cv::Rect2f(p[3] * s, p[4] * s, (p[5] - p[3]) * s,
                                (p[6] - p[4]) * s)});
    }
    break;
  }
  }
  return out;
}

std::vector<RawDetection> ClasswiseNms(std::vector<RawDetection> detections,
                                       float iou_threshold) {
  std::stable_sort(detections.begin(), detections.end(),
                   [](const RawDetection &a, const RawDetection &b) {
                     return a.score > b.score;
                   });
  std::vector<RawDetection> kept;
  for (const RawDetection &d : detections) {
    bool suppressed = false;
    for (const RawDetection &k : kept) {
      if (k.class_id == d.class_id && Iou(k.box, d.box) > iou_threshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed)
      kept.push_back(d);
  }
  return kept;
}

StatusOr<std::vector<std::string>>
ReadLabelmap(const std::filesystem::path &path) {
  std::ifstream in(path);
  if (!in)
    return NotFoundError("cameras.detector.labelmap: cannot open '" +
                         path.string() + "'");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() &&
           std::isspace(static_cast<unsigned char>(line.back())))
      line.pop_back();
    size_t start = 0;
    while (start < line.size() &&
           std::isspace(static_cast<unsigned char>(line[start])))
      ++start;
    line = line.substr(start);
    // "<id> label" or "<id>: label" places the label at <id>.
    size_t digits = 0;
    while (digits < line.size() &&
           std::isdigit(static_cast<unsigned char>(line[digits])))
      ++digits;
    if (digits > 0 && digits < line.size() &&
        (line[digits] == ' ' || line[digits] == ':')) {
      int id = 0;
      std::from_chars(line.data(), line.data() + digits, id);
      std::string label = line.substr(digits + 1);
      while (!label.empty() && (label.front() == ' ' || label.front() == ':'))
        label.erase(label.begin());
      if (id > 100000)
        return InvalidArgumentError("labelmap '" + path.string() + "': id " +
                                    std::to_string(id) + " is too large");
      if (static_cast<int>(labels.size()) <= id)
        labels.resize(id + 1);
      labels[id] = label;
    } else {
      labels.push_back(line);
    }
  }
  return labels;
}

StatusOr<std::unique_ptr<Detector>>
CreateOnnxDetector(const config::DetectorConfig &config) {
  ASSIGN_OR_RETURN(OnnxFormat format, ParseOnnxFormat(config.output_format));
  if (config.model.empty())
    return InvalidArgumentError(
        "cameras.detector.model: an onnx detector needs a model file");
  if (config.input_size < 32 || config.input_size > 4096) {
    return InvalidArgumentError(
        "cameras.detector.input_size: " + std::to_string(config.input_size) +
        " is outside 32..4096");
  }
  if (!std::filesystem::exists(config.model)) {
    return NotFoundError("cameras.detector.model: '" + config.model +
                         "' does not exist");
  }
  std::vector<std::string> labels;
  if (!config.labelmap.empty()) {
    ASSIGN_OR_RETURN(labels, ReadLabelmap(config.labelmap));
  }
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(config.model);
    if (net.empty())
      return InvalidArgumentError("cameras.detector.model: '" + config.model +
                                  "' holds no network");
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return std::unique_ptr<Detector>(std::make_unique<OnnxDetector>(
        std::move(net), format, config.input_size, std::move(labels)));
  } catch (const cv::Exception &e) {
    return InvalidArgumentError("cameras.detector.model: cannot load '" +
                                config.model + "': " + e.what());
  }
}

} // namespace edged::detect::detail
