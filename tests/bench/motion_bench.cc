// Per-stage cost of the camera path on vtest.avi (768x576, 10 fps): decode alone, decode + luma,
// motion on the CPU (and on CUDA where a device exists). Run:
//   build/tests/bench/motion_bench --benchmark_min_time=2
// Frigate's own Python detector is timed side by side by frigate_motion_bench.py.
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <opencv2/videoio.hpp>

#include "detect/capture/capture.h"
#include "detect/motion/motion_detector.h"

namespace edged::detect {
namespace {

const std::string kVideo = std::string(EDGED_DATA_DIR) + "/video/vtest.avi";

// Grabs the next frame, starting the file again at its end.
bool NextFrame(cv::VideoCapture& cap, bool retrieve, cv::Mat* bgr) {
  if (!cap.grab()) {
    cap.open(kVideo, cv::CAP_FFMPEG);
    if (!cap.grab()) return false;
  }
  return !retrieve || cap.retrieve(*bgr);
}

void BM_DecodeGrab(benchmark::State& state) {  // demux + decode, no colour conversion
  cv::VideoCapture cap(kVideo, cv::CAP_FFMPEG);
  cv::Mat bgr;
  for (auto _ : state) {
    if (!NextFrame(cap, false, &bgr)) state.SkipWithError("cannot read vtest.avi");
  }
}
BENCHMARK(BM_DecodeGrab)->Unit(benchmark::kMillisecond);

void BM_DecodeBgr(benchmark::State& state) {  // what a sampled frame costs: decode + BGR
  cv::VideoCapture cap(kVideo, cv::CAP_FFMPEG);
  cv::Mat bgr;
  for (auto _ : state) {
    if (!NextFrame(cap, true, &bgr)) state.SkipWithError("cannot read vtest.avi");
  }
}
BENCHMARK(BM_DecodeBgr)->Unit(benchmark::kMillisecond);

void BM_DecodeBgrLuma(benchmark::State& state) {  // + the Y plane motion needs
  cv::VideoCapture cap(kVideo, cv::CAP_FFMPEG);
  cv::Mat bgr, i420;
  for (auto _ : state) {
    if (!NextFrame(cap, true, &bgr)) state.SkipWithError("cannot read vtest.avi");
    benchmark::DoNotOptimize(LumaFromBgr(bgr, &i420).data);
  }
}
BENCHMARK(BM_DecodeBgrLuma)->Unit(benchmark::kMillisecond);

std::vector<cv::Mat> LoadLuma(int n) {
  std::vector<cv::Mat> out;
  cv::VideoCapture cap(kVideo, cv::CAP_FFMPEG);
  cv::Mat bgr, i420;
  while (static_cast<int>(out.size()) < n && cap.read(bgr)) out.push_back(LumaFromBgr(bgr, &i420).clone());
  return out;
}

void Motion(benchmark::State& state, MotionBackend backend) {
  static const std::vector<cv::Mat> frames = LoadLuma(200);
  config::MotionConfig c;
  c.frame_height = static_cast<int>(state.range(0));
  auto d = MotionDetector::Create(frames[0].size(), c, backend);
  if (!d.ok()) {
    state.SkipWithError(std::string(d.status().message()).c_str());
    return;
  }
  size_t i = 0, boxes = 0;
  for (auto _ : state) {
    auto r = (*d)->Detect(frames[i++ % frames.size()]);
    boxes += r.ok() ? r->size() : 0;
  }
  state.counters["boxes_per_frame"] = benchmark::Counter(static_cast<double>(boxes) / state.iterations());
}

void BM_MotionCpu(benchmark::State& state) { Motion(state, MotionBackend::kCpu); }
BENCHMARK(BM_MotionCpu)->Arg(100)->Arg(200)->Unit(benchmark::kMicrosecond);

void BM_MotionCuda(benchmark::State& state) {
  if (!CudaMotionAvailable()) {
    state.SkipWithError("no CUDA build or no CUDA device");
    return;
  }
  Motion(state, MotionBackend::kCuda);
}
BENCHMARK(BM_MotionCuda)->Arg(100)->Arg(200)->Unit(benchmark::kMicrosecond);

void BM_MotionCpuStill(benchmark::State& state) {  // nothing moves: the contour step is skipped
  static const std::vector<cv::Mat> frames = LoadLuma(1);
  auto d = MotionDetector::Create(frames[0].size(), config::MotionConfig{});
  for (int i = 0; i < 300; ++i) (void)(*d)->Detect(frames[0]);
  for (auto _ : state) benchmark::DoNotOptimize((*d)->Detect(frames[0]).ok());
}
BENCHMARK(BM_MotionCpuStill)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace edged::detect

BENCHMARK_MAIN();
