// What a camera publishes, as Frigate publishes it, built by pure functions: data in, topic and payload
// out, no I/O (the pipeline hands them to the MQTT client). Topics below the cameras' topic_prefix:
//   <prefix>/events                   {"type":"new|update|end","before":{...},"after":{...}}
//   <prefix>/<camera>/<label>         number of true-positive objects in view ("0", "1", ...)
//   <prefix>/<camera>/<label>/snapshot JPEG of the object's best frame, box drawn as configured
//   <prefix>/<camera>/motion          ON | OFF
//   <prefix>/available                online | offline
//   <prefix>/stats                    fps per camera, inference speed, uptime
// plus HomeAssistant discovery and snapshot files under <state_dir>/snapshots with retention.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "base/status.h"
#include "config/config.h"
#include "detect/tracker/tracker.h"

namespace edged::detect {

std::string EventsTopic(const std::string& prefix);
std::string AvailableTopic(const std::string& prefix);
std::string StatsTopic(const std::string& prefix);
std::string MotionTopic(const std::string& prefix, const std::string& camera);
std::string CountTopic(const std::string& prefix, const std::string& camera, const std::string& label);
std::string SnapshotTopic(const std::string& prefix, const std::string& camera, const std::string& label);

// A tracked object in Frigate's event JSON: id, camera, frame_time, label, sub_label, score, top_score,
// false_positive, start_time, end_time (null while active), box and region as [x1, y1, x2, y2], area,
// ratio, active, stationary, motionless_count, position_changes, current_zones, entered_zones,
// has_clip, has_snapshot, attributes, current_attributes.
nlohmann::json ObjectJson(const ObjectState& object);

// The payload of <prefix>/events for one tracker event.
std::string EventPayload(const TrackerEvent& event);

struct CameraStats {
  double camera_fps = 0;     // frames the stream delivered per second
  double process_fps = 0;    // frames processed (motion) per second
  double skipped_fps = 0;    // frames dropped because processing was busy
  double detection_fps = 0;  // detector runs per second
  bool up = false;
};

struct DetectorStats {
  std::string type;    // hog | onnx
  std::string device;  // cpu | cuda
  double inference_ms = 0;  // mean over the last interval
};

// The payload of <prefix>/stats (Frigate's shape: one object per camera, "detectors", "service").
std::string StatsPayload(const std::map<std::string, CameraStats>& cameras,
                         const std::map<std::string, DetectorStats>& detectors, double uptime_seconds);

struct MqttMessage {
  std::string topic;
  std::string payload;
  bool retain = true;
};

// HomeAssistant MQTT discovery for one camera: a motion binary_sensor, per tracked label an occupancy
// binary_sensor and a count sensor, and a camera entity showing the label's last snapshot; all
// available while <prefix>/available says online. Retained config messages.
std::vector<MqttMessage> HomeAssistantDiscovery(const std::string& discovery_prefix, const std::string& topic_prefix,
                                                const std::string& camera, const std::vector<std::string>& labels);

// The frame as a JPEG with the object's box and "label score%" drawn when `config.bounding_box`.
StatusOr<std::string> SnapshotJpeg(const cv::Mat& bgr, const ObjectState& object, const config::SnapshotConfig& config);

// Snapshot files: <dir>/<camera>-<id>.jpg, written atomically, pruned by age.
class SnapshotStore {
 public:
  explicit SnapshotStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  StatusOr<std::filesystem::path> Save(const std::string& camera, const std::string& id, const std::string& jpeg);
  // Removes snapshots last written before `now - retain`; returns how many went.
  StatusOr<int> Prune(std::filesystem::file_time_type now, std::chrono::seconds retain);
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace edged::detect
