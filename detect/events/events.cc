#include "detect/events/events.h"

#include <cmath>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "base/atomic_file.h"

namespace edged::detect {
namespace {

nlohmann::json Corners(const cv::Rect& r) { return {r.x, r.y, r.x + r.width, r.y + r.height}; }

// Scores travel as floats; printed as the nearest short decimal, not float noise (0.8f, not 0.800000011920929).
double Clean(float v) { return std::round(static_cast<double>(v) * 1e6) / 1e6; }

nlohmann::json DeviceJson(const std::string& topic_prefix, const std::string& camera) {
  return {{"identifiers", {topic_prefix + "_" + camera}},
          {"name", camera},
          {"manufacturer", "edged"},
          {"model", "camera"}};
}

}  // namespace

std::string EventsTopic(const std::string& prefix) { return prefix + "/events"; }
std::string AvailableTopic(const std::string& prefix) { return prefix + "/available"; }
std::string StatsTopic(const std::string& prefix) { return prefix + "/stats"; }
std::string MotionTopic(const std::string& prefix, const std::string& camera) { return prefix + "/" + camera + "/motion"; }
std::string CountTopic(const std::string& prefix, const std::string& camera, const std::string& label) {
  return prefix + "/" + camera + "/" + label;
}
std::string SnapshotTopic(const std::string& prefix, const std::string& camera, const std::string& label) {
  return prefix + "/" + camera + "/" + label + "/snapshot";
}

nlohmann::json ObjectJson(const ObjectState& o) {
  nlohmann::json j;
  j["id"] = o.id;
  j["camera"] = o.camera;
  j["frame_time"] = o.frame_time;
  j["label"] = o.label;
  j["sub_label"] = nullptr;
  j["score"] = Clean(o.score);
  j["top_score"] = Clean(o.top_score);
  j["false_positive"] = o.false_positive;
  j["start_time"] = o.start_time;
  j["end_time"] = o.end_time ? nlohmann::json(*o.end_time) : nlohmann::json(nullptr);
  j["box"] = Corners(o.box);
  j["area"] = o.box.area();
  j["ratio"] = o.box.height > 0 ? std::round(1e4 * o.box.width / o.box.height) / 1e4 : 0.0;
  j["region"] = Corners(o.region);
  j["active"] = o.active;
  j["stationary"] = o.stationary;
  j["motionless_count"] = o.motionless_count;
  j["position_changes"] = o.position_changes;
  j["current_zones"] = o.current_zones;
  j["entered_zones"] = o.entered_zones;
  j["has_clip"] = false;  // recording is out of scope
  j["has_snapshot"] = o.has_snapshot;
  j["attributes"] = nlohmann::json::object();
  j["current_attributes"] = nlohmann::json::array();
  return j;
}

std::string EventPayload(const TrackerEvent& event) {
  nlohmann::json j;
  j["type"] = std::string(EventTypeName(event.type));
  j["before"] = ObjectJson(event.before);
  j["after"] = ObjectJson(event.after);
  return j.dump();
}

std::string StatsPayload(const std::map<std::string, CameraStats>& cameras,
                         const std::map<std::string, DetectorStats>& detectors, double uptime_seconds) {
  nlohmann::json j = nlohmann::json::object();
  double detection_fps = 0;
  auto round1 = [](double v) { return std::round(v * 10) / 10; };
  for (const auto& [name, s] : cameras) {
    j[name] = {{"camera_fps", round1(s.camera_fps)},
               {"process_fps", round1(s.process_fps)},
               {"skipped_fps", round1(s.skipped_fps)},
               {"detection_fps", round1(s.detection_fps)},
               {"up", s.up}};
    detection_fps += s.detection_fps;
  }
  nlohmann::json dets = nlohmann::json::object();
  for (const auto& [name, d] : detectors) {
    dets[name] = {{"type", d.type}, {"device", d.device}, {"inference_speed", std::round(d.inference_ms * 100) / 100}};
  }
  j["detectors"] = dets;
  j["detection_fps"] = round1(detection_fps);
  j["service"] = {{"uptime", static_cast<long>(uptime_seconds)}, {"version", "edged"}};
  return j.dump();
}

std::vector<MqttMessage> HomeAssistantDiscovery(const std::string& discovery_prefix, const std::string& topic_prefix,
                                                const std::string& camera, const std::vector<std::string>& labels) {
  std::vector<MqttMessage> out;
  const std::string base_id = topic_prefix + "_" + camera;
  auto common = [&](nlohmann::json j, const std::string& unique_id, const std::string& name) {
    j["unique_id"] = unique_id;
    j["object_id"] = unique_id;
    j["name"] = name;
    j["availability_topic"] = AvailableTopic(topic_prefix);
    j["payload_available"] = "online";
    j["payload_not_available"] = "offline";
    j["device"] = DeviceJson(topic_prefix, camera);
    return j;
  };
  out.push_back({discovery_prefix + "/binary_sensor/" + base_id + "_motion/config",
                 common({{"state_topic", MotionTopic(topic_prefix, camera)},
                         {"payload_on", "ON"},
                         {"payload_off", "OFF"},
                         {"device_class", "motion"}},
                        base_id + "_motion", camera + " motion")
                     .dump()});
  for (const auto& label : labels) {
    const std::string id = base_id + "_" + label;
    out.push_back({discovery_prefix + "/binary_sensor/" + id + "_occupancy/config",
                   common({{"state_topic", CountTopic(topic_prefix, camera, label)},
                           {"value_template", "{{ 'ON' if value | int > 0 else 'OFF' }}"},
                           {"payload_on", "ON"},
                           {"payload_off", "OFF"},
                           {"device_class", "occupancy"}},
                          id + "_occupancy", camera + " " + label + " occupancy")
                       .dump()});
    out.push_back({discovery_prefix + "/sensor/" + id + "_count/config",
                   common({{"state_topic", CountTopic(topic_prefix, camera, label)},
                           {"unit_of_measurement", label},
                           {"state_class", "measurement"},
                           {"icon", "mdi:counter"}},
                          id + "_count", camera + " " + label + " count")
                       .dump()});
    out.push_back({discovery_prefix + "/camera/" + id + "_snapshot/config",
                   common({{"topic", SnapshotTopic(topic_prefix, camera, label)}}, id + "_snapshot",
                          camera + " " + label + " snapshot")
                       .dump()});
  }
  return out;
}

StatusOr<std::string> SnapshotJpeg(const cv::Mat& bgr, const ObjectState& object, const config::SnapshotConfig& config) {
  if (bgr.empty() || bgr.type() != CV_8UC3) return InvalidArgumentError("snapshot: expected a non-empty BGR frame");
  if (config.quality < 1 || config.quality > 100) {
    return InvalidArgumentError("snapshots.quality: " + std::to_string(config.quality) + " is outside 1..100");
  }
  cv::Mat img = bgr;
  if (config.bounding_box) {
    img = bgr.clone();
    const cv::Scalar color(0, 200, 255);  // amber: visible on day and night frames
    const int thickness = std::max(2, img.rows / 300);
    cv::rectangle(img, object.box, color, thickness);
    char text[96];
    std::snprintf(text, sizeof(text), "%s %d%%", object.label.c_str(), static_cast<int>(std::lround(object.score * 100)));
    int baseline = 0;
    const double scale = std::max(0.5, img.rows / 1000.0);
    cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &baseline);
    cv::Point origin(object.box.x, std::max(size.height + 4, object.box.y));
    cv::rectangle(img, cv::Rect(origin.x, origin.y - size.height - 4, size.width + 4, size.height + 4), color, cv::FILLED);
    cv::putText(img, text, origin + cv::Point(2, -2), cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  std::vector<uchar> buf;
  try {
    if (!cv::imencode(".jpg", img, buf, {cv::IMWRITE_JPEG_QUALITY, config.quality})) {
      return InternalError("snapshot: JPEG encoding failed");
    }
  } catch (const cv::Exception& e) {
    return InternalError(std::string("snapshot: JPEG encoding failed: ") + e.what());
  }
  return std::string(buf.begin(), buf.end());
}

StatusOr<std::filesystem::path> SnapshotStore::Save(const std::string& camera, const std::string& id, const std::string& jpeg) {
  const auto path = dir_ / (camera + "-" + id + ".jpg");
  RETURN_IF_ERROR(WriteFileAtomically(path, jpeg));
  return path;
}

StatusOr<int> SnapshotStore::Prune(std::filesystem::file_time_type now, std::chrono::seconds retain) {
  std::error_code ec;
  if (!std::filesystem::exists(dir_, ec)) return 0;
  int removed = 0;
  for (auto it = std::filesystem::directory_iterator(dir_, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->path().extension() != ".jpg") continue;
    auto written = it->last_write_time(ec);
    if (ec) continue;
    if (now - written > retain && std::filesystem::remove(it->path(), ec)) ++removed;
  }
  if (ec) return ErrnoStatus("list snapshots in " + dir_.string(), ec.value());
  return removed;
}

}  // namespace edged::detect
