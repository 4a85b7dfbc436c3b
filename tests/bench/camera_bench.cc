// Camera capacity and still-scene overhead on the CPU, with the code the daemon runs (detect/capture's
// Capture feeding CameraPipeline, as the cameras module does, without MQTT). A plain harness, not
// Google Benchmark: it measures throughput of threads running side by side. Results: docs/benchmarks.md.
//
//   camera_bench capacity [--max N] [--seconds S]
//       1..N cameras in parallel, each reading vtest.avi (looped) at fps 5, replay mode (every sampled
//       frame is processed, as fast as the pipeline goes). Once every camera's motion is reported (the
//       detector settled), counts processed frames for S seconds: the fps each camera sustains.
//   camera_bench still [--frames F] [--rounds R]
//       A still video made with ffmpeg from one vtest.avi frame (same codec and key-frame spacing as
//       vtest.avi), plus a variant with light sensor noise. Bare decoding (Capture alone, a consumer
//       that only takes frames) and the whole pipeline on the same input, alternated R times; the CPU
//       time of the process per input frame, and the pipeline's cost beyond bare decoding.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>

#include "config/config.h"
#include "detect/capture/capture.h"
#include "detect/detectors/detector.h"
#include "detect/pipeline/pipeline.h"

namespace {

using namespace edged::detect;
using Clock = std::chrono::steady_clock;

const std::string kVideo = std::string(EDGED_DATA_DIR) + "/video/vtest.avi";

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double LoadAverage() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

std::unique_ptr<CameraPipeline> MakePipeline(const std::string& name, uint64_t seed) {
  edged::config::DetectorConfig det;
  det.device = "cpu";
  auto detector = CreateDetector(det);
  if (!detector.ok()) {
    std::fprintf(stderr, "camera_bench: %s\n", detector.status().ToString().c_str());
    std::exit(2);
  }
  auto pipeline = CameraPipeline::Create(name, edged::config::CameraConfig{}, std::move(*detector), cv::Size(768, 576), seed);
  if (!pipeline.ok()) {
    std::fprintf(stderr, "camera_bench: %s\n", pipeline.status().ToString().c_str());
    std::exit(2);
  }
  return std::move(*pipeline);
}

CaptureOptions ReplayOptions(const std::string& name, uint64_t max_frames, bool loop) {
  CaptureOptions o;
  o.camera = name;
  o.fps = 5;
  o.loop = loop;
  o.realtime_files = false;
  o.wait_for_consumer = true;  // the module's realtime=false
  o.max_frames = max_frames;
  return o;
}

// ---- capacity -----------------------------------------------------------------------------------

struct CameraRun {
  std::atomic<bool> calibrated{false};
  std::atomic<long> processed{0};  // frames processed since measuring started
  std::atomic<bool> measuring{false};
};

void RunCamera(int index, CameraRun& run, const std::atomic<bool>& stop) {
  const std::string name = "cam" + std::to_string(index);
  auto pipeline = MakePipeline(name, static_cast<uint64_t>(index + 1));
  Capture capture(MakeOpenCvFrameSource(kVideo), ReplayOptions(name, 0, /*loop=*/true));
  capture.Start();
  while (!stop) {
    auto frame = capture.Next(std::chrono::milliseconds(500));
    if (!frame) continue;
    auto r = pipeline->Process(frame->bgr, frame->luma, 1e9 + frame->stream_time_s);
    if (!r.ok()) {
      std::fprintf(stderr, "camera_bench: %s\n", r.status().ToString().c_str());
      std::exit(2);
    }
    if (!r->calibrating) run.calibrated = true;
    if (run.measuring) ++run.processed;
  }
  capture.Stop();
}

int Capacity(int max_cameras, double seconds) {
  std::printf("cameras at fps 5 on vtest.avi (768x576, HOG on the CPU), %.0f s measured once motion is reported\n",
              seconds);
  std::printf("%-8s %-28s %-10s %-10s %s\n", "cameras", "fps per camera", "min fps", "load avg", "sustains 5 fps");
  int largest = 0;
  for (int n = 1; n <= max_cameras; ++n) {
    std::vector<CameraRun> runs(static_cast<size_t>(n));
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) threads.emplace_back(RunCamera, i, std::ref(runs[static_cast<size_t>(i)]), std::cref(stop));
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline &&
           !std::all_of(runs.begin(), runs.end(), [](const CameraRun& r) { return r.calibrated.load(); })) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (auto& r : runs) r.measuring = true;
    const auto start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> fps;
    for (auto& r : runs) fps.push_back(static_cast<double>(r.processed.load()) / elapsed);
    const double load = LoadAverage();
    stop = true;
    for (auto& t : threads) t.join();
    std::string list;
    for (double f : fps) list += (list.empty() ? "" : " ") + std::to_string(f).substr(0, 4);
    const double min_fps = *std::min_element(fps.begin(), fps.end());
    std::printf("%-8d %-28s %-10.2f %-10.2f %s\n", n, list.c_str(), min_fps, load, min_fps >= 5 ? "yes" : "no");
    std::fflush(stdout);
    if (min_fps >= 5) largest = n;
    else break;  // more cameras only share the same two cores
  }
  std::printf("largest number of cameras at >= 5 fps each: %d\n", largest);
  return 0;
}

// ---- still scene ----------------------------------------------------------------------------------

bool Run(const std::string& command) {
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "camera_bench: failed: %s\n", command.c_str());
    return false;
  }
  return true;
}

// CPU seconds of the whole process per input frame, for `frames` frames of `video`.
// `searched`: processed frames the detector ran on.
double CpuPerFrame(const std::string& video, uint64_t frames, bool pipeline_on, long* processed, long* searched) {
  std::unique_ptr<CameraPipeline> pipeline = pipeline_on ? MakePipeline("still", 1) : nullptr;
  Capture capture(MakeOpenCvFrameSource(video), ReplayOptions("still", frames, /*loop=*/true));
  const double cpu0 = CpuSeconds();
  capture.Start();
  *processed = 0;
  *searched = 0;
  while (auto frame = capture.Next(std::chrono::milliseconds(5000))) {
    if (pipeline) {
      auto r = pipeline->Process(frame->bgr, frame->luma, 1e9 + frame->stream_time_s);
      if (!r.ok()) {
        std::fprintf(stderr, "camera_bench: %s\n", r.status().ToString().c_str());
        std::exit(2);
      }
      *searched += !r->regions.empty();
    }
    ++*processed;
  }
  capture.Stop();
  return (CpuSeconds() - cpu0) / static_cast<double>(capture.stats().decoded);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Still(uint64_t frames, int rounds) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("edged-still-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string png = (dir / "frame.png").string();
  struct Input {
    const char* name;
    std::string file;
    const char* filter;
    uint64_t frames;
  };
  // msmpeg4v3 as vtest.avi, a key frame every 200 frames as vtest.avi, constant quality 2 (at a fixed
  // low bitrate the first P-frames after a key frame sharpen the picture enough to read as motion).
  std::vector<Input> inputs = {
      {"still: vtest.avi frame 60 looped", (dir / "still.avi").string(), "null", frames},
      {"still + sensor noise (noise=alls=4:allf=t, ~3 Mbit/s)", (dir / "noisy.avi").string(), "noise=alls=4:allf=t",
       frames * 2 / 3},  // the detector runs until the people count as stationary (10 s): keep it short
  };
  bool ok = Run("ffmpeg -v error -y -i '" + kVideo + "' -vf 'select=eq(n\\,60)' -frames:v 1 '" + png + "'");
  for (const Input& in : inputs) {
    ok = ok && Run("ffmpeg -v error -y -loop 1 -framerate 10 -i '" + png + "' -t 60 -vf '" + in.filter +
                   "' -c:v msmpeg4 -g 200 -q:v 2 '" + in.file + "'");
  }
  if (!ok) return 2;
  std::printf("CPU time of the process per input frame (10 fps input, fps 5 sampled), median of %d rounds\n", rounds);
  std::printf("%-56s %-12s %-12s %-10s %-16s %s\n", "input", "bare decode", "pipeline", "overhead", "frames searched",
              "load avg");
  for (const Input& in : inputs) {
    std::vector<double> bare, full;
    long processed = 0, searched = 0;
    for (int r = 0; r < rounds; ++r) {
      bare.push_back(CpuPerFrame(in.file, in.frames, false, &processed, &searched));
      full.push_back(CpuPerFrame(in.file, in.frames, true, &processed, &searched));
    }
    const double b = Median(bare), f = Median(full);
    char overhead[32], search[32];
    std::snprintf(overhead, sizeof(overhead), "%.1f %%", (f / b - 1) * 100);
    std::snprintf(search, sizeof(search), "%ld / %ld", searched, processed);
    std::printf("%-56s %-12s %-12s %-10s %-16s %.2f\n", in.name, (std::to_string(b * 1e3).substr(0, 5) + " ms").c_str(),
                (std::to_string(f * 1e3).substr(0, 5) + " ms").c_str(), overhead, search, LoadAverage());
    std::fflush(stdout);
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  auto option = [&](const std::string& name, double fallback) {
    for (int i = 2; i + 1 < argc; ++i) {
      if (argv[i] == name) return std::atof(argv[i + 1]);
    }
    return fallback;
  };
  if (mode == "capacity") return Capacity(static_cast<int>(option("--max", 4)), option("--seconds", 12));
  if (mode == "still") return Still(static_cast<uint64_t>(option("--frames", 600)), static_cast<int>(option("--rounds", 3)));
  std::fprintf(stderr, "usage: camera_bench capacity [--max N] [--seconds S] | still [--frames F] [--rounds R]\n");
  return 2;
}
