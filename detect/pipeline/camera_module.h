// The "cameras" module: per configured camera a detect/capture Capture (its own decode thread, frames
// handed over latest-wins, reconnects with capped backoff) and a worker thread running motion -> regions
// -> detector -> tracker on the newest frame, publishing Frigate's topics through the shared MQTT client (events, counts,
// snapshots, motion, availability, stats), HomeAssistant discovery, snapshot files under
// <state_dir>/snapshots, and Prometheus metrics:
//   edged_camera_up{camera}                         1 while frames arrive
//   edged_camera_frames_total{camera,stage}         the capture's counters and the worker's:
//       in        frames read off the stream (CaptureStats::decoded)
//       skipped   read but above the detection fps, never converted (CaptureStats::skipped)
//       decoded   sampled and converted to a picture for detection (CaptureStats::delivered)
//       dropped   replaced in the 1-frame slot because the detector was still busy (CaptureStats::dropped)
//       detected  processed by the pipeline
//   edged_camera_fps{camera,stage}                  the same stages, per second over the last stats
//                                                   interval; <prefix>/stats' skipped_fps is the dropped
//                                                   rate (Frigate: frames skipped because detection was busy)
//   edged_camera_reconnects_total{camera}           successful reopens after the stream failed
//   edged_camera_motion_seconds{camera}             histogram: motion stage time per frame
//   edged_detector_inference_seconds{camera}        histogram: detector time per frame (all regions)
//   edged_detector_device{camera,device}            1 for the device the detector runs on (cpu | cuda)
//   edged_camera_events_total{camera,type}          type: started | ended
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>

#include "base/module.h"
#include "base/status.h"
#include "config/config.h"

namespace prometheus {
class Registry;
}
namespace edged::mqtt {
class Client;
}

namespace edged::detect {

struct CamerasModuleOptions {
  config::HomeAssistantConfig homeassistant;  // discovery prefix and birth topic (the daemon passes its own)
  // true: frames are taken at wall-clock pace (files are played at their own frame rate) and stamped
  // with the wall clock; a busy detector makes the capture drop frames. false: files are read as fast
  // as the pipeline runs, every sampled frame is processed (none dropped), and frames are stamped with
  // the start time plus their place in the file (tests, replays, benchmarks).
  bool realtime = true;
  long max_frames = 0;                    // end each camera's input after this many frames read (0: never)
  double stats_interval_seconds = 60;     // <prefix>/stats and the fps gauges
  double motion_off_delay_seconds = 30;   // <camera>/motion turns OFF after this long without motion
  std::uint64_t seed = std::random_device{}();  // object id randomness
};

// Creates the module for every enabled stream of `config`. Validates the detector and each camera's
// settings (an unusable detector or a bad camera setting is an error here); opening the streams
// happens in Start()'s threads, so a camera that is not there makes the module unhealthy, not failed.
// `mqtt` and `registry` must outlive the module.
StatusOr<std::unique_ptr<Module>> CreateCamerasModule(const config::CamerasConfig& config, mqtt::Client& mqtt,
                                                      prometheus::Registry& registry,
                                                      const std::filesystem::path& state_dir,
                                                      CamerasModuleOptions options = {});

}  // namespace edged::detect
