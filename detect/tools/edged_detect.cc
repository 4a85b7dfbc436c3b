// edged-detect: runs one camera's pipeline (motion -> regions -> detector -> tracker) on a file or
// stream and prints one JSON line per processed frame: motion boxes, regions, detections and events.
// For tuning masks, thresholds and zones before deploying; the daemon runs the same code.
//
//   edged-detect --input ../shared/data/video/vtest.avi --frames 200
//   edged-detect --config /etc/edged/edged.yaml --camera front --input recording.mp4
#include <chrono>
#include <cstdio>
#include <optional>
#include <iostream>

#include <CLI/CLI.hpp>

#include "base/logging.h"
#include "config/loader.h"
#include "detect/capture/capture.h"
#include "detect/detectors/detector.h"
#include "detect/pipeline/pipeline.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "edged-detect: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run edged's camera pipeline on a file or stream and print JSON lines per frame"};
  std::string config_file, camera_name, input, detector_type, device, model, labelmap, format;
  long max_frames = 0;
  double fps = 0;
  int input_size = 0;
  std::uint64_t seed = 1;
  bool quiet_frames = false;
  app.add_option("--config", config_file, "edged YAML configuration to take the camera and detector from");
  app.add_option("--camera", camera_name, "camera name in --config (default: the first one)");
  app.add_option("--input", input, "file, rtsp://, http:// or /dev/videoN (default: the camera's input)");
  app.add_option("--frames", max_frames, "stop after this many input frames (0: the whole input)");
  app.add_option("--fps", fps, "detection rate (default: the camera's fps)");
  app.add_option("--detector", detector_type, "hog | onnx (default: the config's)");
  app.add_option("--device", device, "auto | cuda | cpu (default: the config's)");
  app.add_option("--model", model, "onnx model file");
  app.add_option("--labelmap", labelmap, "onnx labelmap file");
  app.add_option("--format", format, "onnx output format: yolov5 | yolov8 | ssd");
  app.add_option("--input-size", input_size, "onnx model input size");
  app.add_option("--seed", seed, "seed for object ids (reproducible output)");
  app.add_flag("--events-only", quiet_frames, "print only frames that have detections or events");
  CLI11_PARSE(app, argc, argv);

  edged::config::CamerasConfig cameras;
  edged::config::CameraConfig camera;
  if (!config_file.empty()) {
    auto cfg = edged::config::LoadConfigFile(config_file);
    if (!cfg.ok()) return Fail(cfg.status().ToString());
    cameras = cfg->cameras;
    if (cameras.streams.empty()) return Fail(config_file + " configures no cameras (cameras.streams)");
    auto it = camera_name.empty() ? cameras.streams.begin() : cameras.streams.find(camera_name);
    if (it == cameras.streams.end()) return Fail("camera '" + camera_name + "' is not in " + config_file);
    camera_name = it->first;
    camera = it->second;
  } else {
    if (camera_name.empty()) camera_name = "camera";
  }
  if (!input.empty()) camera.input = input;
  if (camera.input.empty()) return Fail("no input: give --input or a camera with an input in --config");
  if (fps > 0) camera.fps = fps;
  if (!detector_type.empty()) cameras.detector.type = detector_type;
  if (!device.empty()) cameras.detector.device = device;
  if (!model.empty()) cameras.detector.model = model;
  if (!labelmap.empty()) cameras.detector.labelmap = labelmap;
  if (!format.empty()) cameras.detector.output_format = format;
  if (input_size > 0) cameras.detector.input_size = input_size;
  if (!(camera.fps > 0)) return Fail("fps must be positive");

  auto detector = edged::detect::CreateDetector(cameras.detector);
  if (!detector.ok()) return Fail(detector.status().ToString());

  // The daemon's capture, told to hand over every sampled frame of a file (nothing dropped) and to
  // stop after --frames; a stream that cannot be opened at all is an error here, not a retry.
  edged::detect::CaptureOptions capture_options = edged::detect::CaptureOptions::FromConfig(camera_name, camera);
  capture_options.loop = false;
  capture_options.realtime_files = false;
  capture_options.wait_for_consumer = true;
  capture_options.max_frames = max_frames > 0 ? static_cast<std::uint64_t>(max_frames) : 0;
  edged::detect::Capture capture(edged::detect::MakeOpenCvFrameSource(camera.input), capture_options);
  capture.Start();
  std::unique_ptr<edged::detect::CameraPipeline> pipeline;
  double last_time = 0;
  while (true) {
    std::optional<edged::detect::Frame> frame = capture.Next(std::chrono::milliseconds(200));
    if (!frame) {
      const edged::detect::CaptureStats stats = capture.stats();
      if (stats.ended) break;
      if (!stats.last_error.empty()) {
        if (stats.decoded == 0) return Fail("cannot open '" + edged::detect::RedactUrl(camera.input) + "': " + stats.last_error);
        std::fprintf(stderr, "edged-detect: %s; reconnecting\n", stats.last_error.c_str());
      }
      continue;
    }
    if (!pipeline) {
      const cv::Size size(camera.width > 0 ? camera.width : frame->bgr.cols,
                          camera.height > 0 ? camera.height : frame->bgr.rows);
      auto p = edged::detect::CameraPipeline::Create(camera_name, camera, std::move(*detector), size, seed);
      if (!p.ok()) return Fail(p.status().ToString());
      pipeline = std::move(*p);
    }
    last_time = frame->stream_time_s;  // seconds into the input
    auto result = pipeline->Process(frame->bgr, frame->luma, last_time);
    if (!result.ok()) return Fail(result.status().ToString());
    if (quiet_frames && result->detections.empty() && result->events.empty()) continue;
    std::cout << edged::detect::FrameResultJson(*result).dump() << "\n";
  }
  if (!pipeline) return Fail("'" + edged::detect::RedactUrl(camera.input) + "' delivered no frames");
  edged::detect::FrameResult last;
  last.frame = -1;
  last.time = last_time;
  last.events = pipeline->Finish();
  if (!last.events.empty()) std::cout << edged::detect::FrameResultJson(last).dump() << "\n";
  std::cout.flush();
  return 0;
}
