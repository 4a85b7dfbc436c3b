// Prints edged's motion boxes for the first N frames of a video as JSON lines, and the time spent in
// MotionDetector::Detect, for frigate_motion_bench.py to compare with Frigate's Python detector.
//   motion_boxes <video> [frames] [frame_height]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <opencv2/videoio.hpp>

#include "detect/capture/capture.h"
#include "detect/motion/motion_detector.h"

int main(int argc, char** argv) {
  using namespace edged::detect;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <video> [frames] [frame_height]\n", argv[0]);
    return 2;
  }
  const int limit = argc > 2 ? std::atoi(argv[2]) : 1 << 30;
  edged::config::MotionConfig config;
  if (argc > 3) config.frame_height = std::atoi(argv[3]);
  cv::VideoCapture cap(argv[1], cv::CAP_FFMPEG);
  std::vector<cv::Mat> frames;
  cv::Mat bgr, i420;
  while (static_cast<int>(frames.size()) < limit && cap.read(bgr)) frames.push_back(LumaFromBgr(bgr, &i420).clone());
  if (frames.empty()) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  auto d = MotionDetector::Create(frames[0].size(), config);
  if (!d.ok()) {
    std::fprintf(stderr, "%s\n", d.status().ToString().c_str());
    return 1;
  }
  std::vector<std::vector<cv::Rect>> boxes;
  std::vector<bool> lightning, calibrating;
  std::vector<double> fraction;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& f : frames) {
    auto r = (*d)->Detect(f);
    boxes.emplace_back(r->begin(), r->end());
    lightning.push_back((*d)->last_was_lightning());
    calibrating.push_back((*d)->calibrating());
    fraction.push_back((*d)->last_motion_fraction());
  }
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  for (size_t i = 0; i < boxes.size(); ++i) {
    std::printf("{\"frame\":%zu,\"lightning\":%s,\"calibrating\":%s,\"fraction\":%.4f,\"boxes\":[", i,
                lightning[i] ? "true" : "false", calibrating[i] ? "true" : "false", fraction[i]);
    for (size_t j = 0; j < boxes[i].size(); ++j) {
      const auto& b = boxes[i][j];
      std::printf("%s[%d,%d,%d,%d]", j ? "," : "", b.x, b.y, b.x + b.width, b.y + b.height);
    }
    std::printf("]}\n");
  }
  std::printf("{\"us_per_frame\":%.3f,\"frames\":%zu}\n", us / frames.size(), frames.size());
  return 0;
}
