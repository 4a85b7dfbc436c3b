// Object detection cost on the CPU: HOG per 320x320 region (OpenCV and the own CPU twin of the CUDA
// kernels), per 576x576 region, and the whole pipeline per frame on vtest.avi. Results: docs/benchmarks.md.
#include <benchmark/benchmark.h>
#include <opencv2/videoio.hpp>

#include "detect/detectors/detector.h"
#include "detect/detectors/hog_internal.h"
#include "detect/pipeline/pipeline.h"

namespace {

using namespace edged::detect;

cv::Mat VtestFrame(int index) {
  cv::VideoCapture cap(std::string(EDGED_DATA_DIR) + "/video/vtest.avi");
  cv::Mat frame;
  for (int i = 0; i <= index; ++i) cap.read(frame);
  return frame;
}

void BM_HogRegion(benchmark::State& state) {
  const auto backend = static_cast<detail::HogBackend>(state.range(0));
  const int side = static_cast<int>(state.range(1));
  cv::Mat frame = VtestFrame(60);
  auto detector = detail::MakeHogDetector(backend, detail::HogSearch{});
  const cv::Rect region(200, 100, side, side);
  size_t found = 0;
  for (auto _ : state) {
    auto r = detector->Detect(frame, region & cv::Rect(0, 0, frame.cols, frame.rows));
    found = r.ok() ? r->size() : 0;
    benchmark::DoNotOptimize(found);
  }
  state.counters["detections"] = static_cast<double>(found);
}
BENCHMARK(BM_HogRegion)
    ->ArgNames({"backend", "side"})
    ->Args({static_cast<int>(detail::HogBackend::kOpenCv), 320})
    ->Args({static_cast<int>(detail::HogBackend::kTwin), 320})
    ->Args({static_cast<int>(detail::HogBackend::kOpenCv), 576})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The pipeline on vtest.avi at 5 fps of its 10 fps: motion, regions, HOG, tracker, per processed frame.
void BM_PipelineVtest(benchmark::State& state) {
  cv::VideoCapture cap(std::string(EDGED_DATA_DIR) + "/video/vtest.avi");
  std::vector<cv::Mat> frames;
  cv::Mat f;
  for (int i = 0; i < 200 && cap.read(f); ++i) {
    if (i % 2 == 0) frames.push_back(f.clone());
  }
  edged::config::DetectorConfig det;
  det.device = "cpu";
  for (auto _ : state) {
    state.PauseTiming();
    auto pipeline = CameraPipeline::Create("bench", edged::config::CameraConfig{}, *CreateDetector(det),
                                           frames[0].size(), 1);
    state.ResumeTiming();
    double t = 0;
    for (const cv::Mat& frame : frames) {
      auto r = (*pipeline)->Process(frame, t);
      benchmark::DoNotOptimize(r);
      t += 0.2;
    }
  }
  state.counters["frames"] = static_cast<double>(frames.size());
  // Seconds per processed frame (time / (frames * iterations)).
  state.counters["s_per_frame"] = benchmark::Counter(
      static_cast<double>(frames.size()), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PipelineVtest)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
