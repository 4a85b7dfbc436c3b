// Event, stats and discovery payloads against golden JSON; snapshots as real JPEG files.
#include "detect/events/events.h"

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

namespace edged::detect {
namespace {

using nlohmann::json;

ObjectState Person() {
  ObjectState o;
  o.id = "1700000000.250000-ab12cd";
  o.camera = "front";
  o.label = "person";
  o.frame_time = 1700000002.5;
  o.start_time = 1700000000.25;
  o.score = 0.75f;
  o.top_score = 0.8f;
  o.false_positive = false;
  o.box = cv::Rect(100, 50, 40, 80);
  o.region = cv::Rect(60, 10, 160, 160);
  o.motionless_count = 2;
  o.position_changes = 3;
  o.current_zones = {"porch"};
  o.entered_zones = {"yard", "porch"};
  o.has_snapshot = true;
  return o;
}

TEST(DetectEvents, ObjectJsonIsFrigatesShape) {
  const json golden = json::parse(R"({
    "id": "1700000000.250000-ab12cd", "camera": "front", "frame_time": 1700000002.5,
    "label": "person", "sub_label": null, "score": 0.75, "top_score": 0.8, "false_positive": false,
    "start_time": 1700000000.25, "end_time": null,
    "box": [100, 50, 140, 130], "area": 3200, "ratio": 0.5, "region": [60, 10, 220, 170],
    "active": true, "stationary": false, "motionless_count": 2, "position_changes": 3,
    "current_zones": ["porch"], "entered_zones": ["yard", "porch"],
    "has_clip": false, "has_snapshot": true, "attributes": {}, "current_attributes": []
  })");
  EXPECT_EQ(ObjectJson(Person()), golden) << ObjectJson(Person()).dump(2);
}

TEST(DetectEvents, EventPayloadCarriesTypeBeforeAndAfter) {
  TrackerEvent e{EventType::kEnd, Person(), Person(), false};
  e.after.active = false;
  e.after.end_time = 1700000009.0;
  e.after.current_zones.clear();
  json j = json::parse(EventPayload(e));
  EXPECT_EQ(j["type"], "end");
  EXPECT_EQ(j["before"], ObjectJson(Person()));
  EXPECT_EQ(j["after"]["end_time"], 1700000009.0);
  EXPECT_EQ(j["after"]["active"], false);
  EXPECT_EQ(j["after"]["current_zones"], json::array());
  for (EventType t : {EventType::kNew, EventType::kUpdate}) {
    e.type = t;
    EXPECT_EQ(json::parse(EventPayload(e))["type"], std::string(EventTypeName(t)));
  }
}

TEST(DetectEvents, Topics) {
  EXPECT_EQ(EventsTopic("frigate"), "frigate/events");
  EXPECT_EQ(AvailableTopic("frigate"), "frigate/available");
  EXPECT_EQ(StatsTopic("frigate"), "frigate/stats");
  EXPECT_EQ(MotionTopic("frigate", "front"), "frigate/front/motion");
  EXPECT_EQ(CountTopic("frigate", "front", "person"), "frigate/front/person");
  EXPECT_EQ(SnapshotTopic("frigate", "front", "person"), "frigate/front/person/snapshot");
}

TEST(DetectEvents, StatsPayload) {
  std::map<std::string, CameraStats> cams{{"front", {10.04, 5.0, 0.5, 2.26, true}}};
  std::map<std::string, DetectorStats> dets{{"hog", {"hog", "cpu", 12.345}}};
  const json golden = json::parse(R"({
    "front": {"camera_fps": 10.0, "process_fps": 5.0, "skipped_fps": 0.5, "detection_fps": 2.3, "up": true},
    "detectors": {"hog": {"type": "hog", "device": "cpu", "inference_speed": 12.35}},
    "detection_fps": 2.3,
    "service": {"uptime": 42, "version": "edged"}
  })");
  EXPECT_EQ(json::parse(StatsPayload(cams, dets, 42.7)), golden);
}

TEST(DetectEvents, HomeAssistantDiscovery) {
  auto msgs = HomeAssistantDiscovery("homeassistant", "frigate", "front", {"person", "car"});
  ASSERT_EQ(msgs.size(), 1u + 2 * 3);
  std::map<std::string, json> by_topic;
  for (const auto& m : msgs) {
    EXPECT_TRUE(m.retain);
    by_topic[m.topic] = json::parse(m.payload);
  }
  const json device = json::parse(R"({"identifiers": ["frigate_front"], "name": "front", "manufacturer": "edged",
                                      "model": "camera"})");
  EXPECT_EQ(by_topic.at("homeassistant/binary_sensor/frigate_front_motion/config"), json::parse(R"({
    "unique_id": "frigate_front_motion", "object_id": "frigate_front_motion", "name": "front motion",
    "state_topic": "frigate/front/motion", "payload_on": "ON", "payload_off": "OFF", "device_class": "motion",
    "availability_topic": "frigate/available", "payload_available": "online", "payload_not_available": "offline",
    "device": )" + device.dump() + "}"));
  const json& occupancy = by_topic.at("homeassistant/binary_sensor/frigate_front_person_occupancy/config");
  EXPECT_EQ(occupancy["state_topic"], "frigate/front/person");
  EXPECT_EQ(occupancy["device_class"], "occupancy");
  EXPECT_EQ(occupancy["value_template"], "{{ 'ON' if value | int > 0 else 'OFF' }}");
  const json& count = by_topic.at("homeassistant/sensor/frigate_front_car_count/config");
  EXPECT_EQ(count["state_topic"], "frigate/front/car");
  EXPECT_EQ(count["state_class"], "measurement");
  const json& camera = by_topic.at("homeassistant/camera/frigate_front_person_snapshot/config");
  EXPECT_EQ(camera["topic"], "frigate/front/person/snapshot");
  EXPECT_EQ(camera["device"], device);
}

TEST(DetectEvents, SnapshotIsAJpegWithTheBoxDrawn) {
  cv::Mat frame(240, 320, CV_8UC3, cv::Scalar(30, 30, 30));
  ObjectState o = Person();
  config::SnapshotConfig cfg;
  cfg.quality = 90;
  auto jpeg = SnapshotJpeg(frame, o, cfg);
  ASSERT_TRUE(jpeg.ok()) << jpeg.status().ToString();
  ASSERT_GT(jpeg->size(), 100u);
  EXPECT_EQ(static_cast<unsigned char>((*jpeg)[0]), 0xFF);
  EXPECT_EQ(static_cast<unsigned char>((*jpeg)[1]), 0xD8);
  cv::Mat decoded = cv::imdecode(std::vector<uchar>(jpeg->begin(), jpeg->end()), cv::IMREAD_COLOR);
  ASSERT_EQ(decoded.size(), frame.size());
  // The box's left edge is drawn (amber), the inside is untouched.
  cv::Vec3b edge = decoded.at<cv::Vec3b>(o.box.y + o.box.height / 2, o.box.x);
  EXPECT_GT(edge[2], 200);
  EXPECT_GT(edge[1], 150);
  cv::Vec3b inside = decoded.at<cv::Vec3b>(o.box.y + o.box.height / 2, o.box.x + o.box.width / 2);
  EXPECT_LT(inside[2], 60);

  cfg.bounding_box = false;
  auto plain = SnapshotJpeg(frame, o, cfg);
  ASSERT_TRUE(plain.ok());
  cv::Mat plain_decoded = cv::imdecode(std::vector<uchar>(plain->begin(), plain->end()), cv::IMREAD_COLOR);
  EXPECT_LT(plain_decoded.at<cv::Vec3b>(o.box.y + o.box.height / 2, o.box.x)[2], 60);

  cfg.quality = 0;
  EXPECT_EQ(SnapshotJpeg(frame, o, cfg).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(SnapshotJpeg(cv::Mat(), o, config::SnapshotConfig{}).ok());
}

TEST(DetectEvents, SnapshotStoreSavesAndPrunes) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "edged_snapshots_test";
  std::filesystem::remove_all(dir);
  SnapshotStore store(dir / "snapshots");
  auto old_path = store.Save("front", "1-aaaaaa", "old");
  auto new_path = store.Save("front", "2-bbbbbb", "new");
  ASSERT_TRUE(old_path.ok()) << old_path.status().ToString();
  ASSERT_TRUE(new_path.ok());
  EXPECT_EQ(old_path->filename(), "front-1-aaaaaa.jpg");
  const auto now = std::filesystem::file_time_type::clock::now();
  std::filesystem::last_write_time(*old_path, now - std::chrono::hours(48));
  auto removed = store.Prune(now, std::chrono::hours(24));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  EXPECT_FALSE(std::filesystem::exists(*old_path));
  EXPECT_TRUE(std::filesystem::exists(*new_path));
  EXPECT_EQ(*SnapshotStore(dir / "missing").Prune(now, std::chrono::hours(1)), 0);
}

}  // namespace
}  // namespace edged::detect
