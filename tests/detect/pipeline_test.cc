// The camera pipeline: regions, a still scene, and the demo camera on vtest.avi end to end through a
// real mosquitto (events new/update/end with label person, snapshots that decode as JPEG, counts,
// motion, availability, discovery, stats, metrics, snapshot files).
#include "detect/pipeline/pipeline.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <prometheus/registry.h>

#include "detect/capture/capture.h"
#include "detect/pipeline/camera_module.h"
#include "detect/regions/regions.h"
#include "tests/support/mqtt_test_support.h"

namespace edged::detect {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

const std::string kVideo = std::string(EDGED_DATA_DIR) + "/video/vtest.avi";

// Wraps the real HOG detector and counts the regions it is asked to search.
class CountingDetector final : public Detector {
 public:
  explicit CountingDetector(std::unique_ptr<Detector> inner) : inner_(std::move(inner)) {}
  std::string_view type() const override { return inner_->type(); }
  Device device() const override { return inner_->device(); }
  StatusOr<std::vector<Detection>> Detect(const cv::Mat& bgr, const cv::Rect& region) override {
    ++*calls_;
    return inner_->Detect(bgr, region);
  }
  std::shared_ptr<int> calls() const { return calls_; }

 private:
  std::unique_ptr<Detector> inner_;
  std::shared_ptr<int> calls_ = std::make_shared<int>(0);
};

std::unique_ptr<CountingDetector> CpuHog() {
  config::DetectorConfig det;
  det.device = "cpu";
  auto detector = CreateDetector(det);
  EXPECT_TRUE(detector.ok()) << detector.status().ToString();
  return std::make_unique<CountingDetector>(std::move(*detector));
}

// Frames of vtest.avi at its 10 fps, through the shared capture (as the module reads them).
std::vector<Frame> VideoFrames(int count) {
  CaptureOptions o;
  o.fps = 0;
  o.realtime_files = false;
  o.wait_for_consumer = true;
  o.max_frames = static_cast<uint64_t>(count);
  Capture capture(MakeOpenCvFrameSource(kVideo), o);
  capture.Start();
  std::vector<Frame> frames;
  while (auto f = capture.Next(milliseconds(10000))) frames.push_back(std::move(*f));
  return frames;
}

TEST(DetectPipeline, RegionsAreFrigatesFrameRegions) {
  // The pipeline searches exactly detect/regions' FrameRegions around the objects it tracked before the
  // frame and the frame's motion (none while calibrating), with Frigate's 320 px minimum. 3 s of video:
  // HOG on Frigate's regions (up to the whole frame around a group of walkers) is the slow part.
  auto counting = CpuHog();
  auto calls = counting->calls();
  auto pipeline = CameraPipeline::Create("demo", config::CameraConfig{}, std::move(counting), cv::Size(768, 576), 1);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  int with_regions = 0, searched = 0;
  for (const Frame& f : VideoFrames(30)) {
    std::vector<cv::Rect> objects;
    for (const auto& o : (*pipeline)->tracker().Objects()) objects.push_back(o.box);
    auto r = (*pipeline)->Process(f.bgr, f.luma, f.stream_time_s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->regions, regions::FrameRegions(cv::Size(768, 576), 320, objects, r->motion, r->calibrating))
        << "frame " << r->frame;
    if (r->calibrating) {
      EXPECT_TRUE(r->motion.empty()) << "frame " << r->frame;
    }
    for (const cv::Rect& g : r->regions) {
      EXPECT_EQ(g.width, g.height) << g;
      EXPECT_GE(g.width, 320) << g;
    }
    for (const Detection& d : r->detections) {
      EXPECT_EQ(d.box & cv::Rect(0, 0, 768, 576), d.box) << "detections are clipped to the frame";
    }
    with_regions += !r->regions.empty();
    searched += static_cast<int>(r->regions.size());
  }
  EXPECT_GT(with_regions, 0) << "people walk through vtest.avi: some frames must be searched";
  EXPECT_EQ(*calls, searched) << "the detector runs once per region, and only there";
}

TEST(DetectPipeline, StillFrameReportsNoMotionAndRunsNoDetection) {
  // Frigate's motion detector, fed a still picture from start-up, calibrates for ~18 frames and then
  // still reports motion for ~100 more while its contrast history fills and its average catches up.
  // The pipeline settles the (unchanged) detector on the first picture before its first result, and
  // reports no motion while calibrating: a still picture shows no motion and the detector never runs.
  cv::Mat img = cv::imread(std::string(EDGED_DATA_DIR) + "/images/horses.jpg");
  ASSERT_FALSE(img.empty());
  auto counting = CpuHog();
  auto calls = counting->calls();
  auto pipeline = CameraPipeline::Create("still", config::CameraConfig{}, std::move(counting), img.size(), 1);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  int calibrated_at = -1;
  for (int i = 0; i < 200; ++i) {
    auto r = (*pipeline)->Process(img, 100 + i * 0.2);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->motion.empty()) << "frame " << i << (r->calibrating ? " (calibrating)" : "");
    EXPECT_TRUE(r->regions.empty()) << "frame " << i;
    EXPECT_TRUE(r->detections.empty()) << "frame " << i;
    EXPECT_TRUE(r->events.empty()) << "frame " << i;
    if (calibrated_at < 0 && !r->calibrating) calibrated_at = i;
    if (calibrated_at >= 0) {
      EXPECT_FALSE(r->calibrating) << "frame " << i << ": a still picture stays calibrated";
    }
  }
  std::printf("motion settled after %d frames of the first picture\n", (*pipeline)->motion_priming_frames());
  EXPECT_EQ(calibrated_at, 0) << "the detector is settled before the first result";
  EXPECT_GE((*pipeline)->motion_priming_frames(), 50) << "the contrast history (50 frames) fills first";
  EXPECT_LT((*pipeline)->motion_priming_frames(), 400) << "a still picture settles well before the cap";
  EXPECT_EQ(*calls, 0) << "nothing moved and nothing was tracked: the detector must not run";
  EXPECT_TRUE((*pipeline)->tracker().Objects().empty());
  EXPECT_TRUE((*pipeline)->Finish().empty());

  // The same pipeline on moving people: their motion is reported and searched.
  auto video = CameraPipeline::Create("people", config::CameraConfig{}, CpuHog(), cv::Size(768, 576), 1);
  ASSERT_TRUE(video.ok());
  int moving = -1;
  for (const Frame& f : VideoFrames(20)) {
    auto r = (*video)->Process(f.bgr, f.luma, f.stream_time_s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (!r->motion.empty()) {
      EXPECT_FALSE(r->calibrating);
      EXPECT_FALSE(r->regions.empty()) << "reported motion is searched";
      moving = static_cast<int>(r->frame);
      break;
    }
  }
  EXPECT_GE(moving, 0) << "no motion reported on vtest.avi's walking people";
}

TEST(DetectPipeline, StationaryObjectsAreNotSearchedAgainUntilTheInterval) {
  // People walk through vtest.avi, then the picture freezes: once the ghosts of their steps have faded
  // from the motion average and they count as stationary, nobody is searched again except on Frigate's
  // stationary interval (every 51st frame), and the tracker keeps them from their last detection.
  config::CameraConfig camera;
  camera.stationary_after = config::Seconds(1);
  camera.motion.frame_alpha = 0.5;  // a fast average: the ghosts fade in a few frames, not a hundred
  auto counting = CpuHog();
  auto calls = counting->calls();
  auto pipeline = CameraPipeline::Create("frozen", camera, std::move(counting), cv::Size(768, 576), 1);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().ToString();
  std::vector<Frame> frames = VideoFrames(24);
  double t = 0;
  for (const Frame& f : frames) {
    ASSERT_TRUE((*pipeline)->Process(f.bgr, f.luma, t += 0.2).ok());
  }
  ASSERT_GT(*calls, 0) << "walking people are searched";
  std::vector<int> calls_at;
  for (int i = 0; i < 120; ++i) {
    auto r = (*pipeline)->Process(frames.back().bgr, frames.back().luma, t += 0.2);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    calls_at.push_back(*calls);
  }
  const auto objects = (*pipeline)->tracker().Objects();
  ASSERT_FALSE(objects.empty()) << "HOG found nobody in the frozen picture";
  for (const auto& o : objects) EXPECT_TRUE(o.stationary) << o.id;
  // The last 60 frozen frames: at most one stationary check (one frame's regions), not 60.
  const int late = calls_at.back() - calls_at[59];
  EXPECT_LE(late, static_cast<int>(objects.size())) << "stationary objects searched on " << late << " regions";
  EXPECT_EQ((*pipeline)->Process(frames.back().bgr, frames.back().luma, t += 0.2)->detections.size(), objects.size())
      << "each stationary object keeps its last detection";
}

config::CamerasConfig DemoCameras(const std::string& input) {
  config::CamerasConfig cams;
  cams.detector.device = "cpu";
  config::CameraConfig demo;
  demo.input = input;
  demo.fps = 5;
  demo.max_disappeared = config::Seconds(2);
  cams.streams["demo"] = demo;
  return cams;
}

double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::map<std::string, std::string>& labels) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const auto& l : m.label) found |= l.name == k && l.value == v;
        match &= found;
      }
      if (!match) continue;
      if (family.type == prometheus::MetricType::Counter) return m.counter.value;
      if (family.type == prometheus::MetricType::Gauge) return m.gauge.value;
      if (family.type == prometheus::MetricType::Histogram) return static_cast<double>(m.histogram.sample_count);
    }
  }
  return -1;
}

TEST(DetectPipeline, DemoCameraEndToEndThroughMosquitto) {
  auto broker = test::MosquittoBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  auto probe = test::MqttProbe::Connect(**broker, {"frigate/#", "homeassistant/#"});
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  auto client = mqtt::Client::Create((*broker)->ClientConfig("edged_cameras_test"), nullptr);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE((*client)->Start().ok());

  test::TempDir state("edged-cameras");
  prometheus::Registry registry;
  CamerasModuleOptions options;
  options.realtime = false;  // as fast as the pipeline runs, stamped with the video's own times
  options.max_frames = 110;  // 11 s of video, 55 frames processed
  options.stats_interval_seconds = 1;
  options.seed = 1;
  auto module = CreateCamerasModule(DemoCameras(kVideo), **client, registry, state.path(), options);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  EXPECT_EQ((*module)->name(), "cameras");
  ASSERT_TRUE((*module)->Start().ok());

  EXPECT_TRUE((*probe)->WaitFor("frigate/available", test::PayloadIs("online")).has_value()) << (*probe)->Dump();
  auto discovery = (*probe)->WaitFor("homeassistant/binary_sensor/frigate_demo_motion/config");
  ASSERT_TRUE(discovery.has_value());
  EXPECT_EQ(json::parse(discovery->payload)["state_topic"], "frigate/demo/motion");
  EXPECT_TRUE((*probe)->WaitFor("homeassistant/camera/frigate_demo_person_snapshot/config").has_value());

  auto is_type = [](const std::string& type) {
    return [type](const mqtt::Message& m) { return json::parse(m.payload)["type"] == type; };
  };
  auto new_event = (*probe)->WaitFor("frigate/events", is_type("new"), milliseconds(120000));
  ASSERT_TRUE(new_event.has_value()) << (*probe)->Dump();
  const json created = json::parse(new_event->payload);
  EXPECT_EQ(created["after"]["label"], "person");
  EXPECT_EQ(created["after"]["camera"], "demo");
  EXPECT_EQ(created["after"]["false_positive"], false);
  EXPECT_EQ(created["after"]["has_snapshot"], true);
  EXPECT_TRUE(created["after"]["end_time"].is_null());
  const std::string id = created["after"]["id"];

  auto snapshot = (*probe)->WaitFor("frigate/demo/person/snapshot", {}, milliseconds(10000));
  ASSERT_TRUE(snapshot.has_value());
  cv::Mat jpeg = cv::imdecode(std::vector<uchar>(snapshot->payload.begin(), snapshot->payload.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(jpeg.empty()) << "the snapshot does not decode as JPEG";
  EXPECT_EQ(jpeg.size(), cv::Size(768, 576));
  EXPECT_TRUE((*probe)->WaitFor("frigate/demo/person", [](const mqtt::Message& m) { return m.payload != "0"; }).has_value());
  EXPECT_TRUE((*probe)->WaitFor("frigate/demo/motion", test::PayloadIs("ON")).has_value());
  EXPECT_TRUE((*probe)->WaitFor("frigate/events", is_type("update"), milliseconds(60000)).has_value());

  // The input ends after max_frames: every object ends, counts drop to 0, the module says so.
  Health health;
  for (int i = 0; i < 1200 && health.message.find("ended") == std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    health = (*module)->health();
  }
  EXPECT_EQ(health.state, HealthState::kWarning);
  EXPECT_NE(health.message.find("ended"), std::string::npos) << health.message;
  auto end_event = (*probe)->WaitFor(
      "frigate/events", [&](const mqtt::Message& m) { return json::parse(m.payload)["after"]["id"] == id &&
                                                             json::parse(m.payload)["type"] == "end"; },
      milliseconds(120000));
  ASSERT_TRUE(end_event.has_value()) << (*probe)->Dump();
  const json ended = json::parse(end_event->payload);
  EXPECT_FALSE(ended["after"]["end_time"].is_null());
  EXPECT_EQ(ended["after"]["active"], false);
  EXPECT_TRUE((*probe)->WaitFor("frigate/demo/person", test::PayloadIs("0")).has_value());
  // Updates follow Frigate's rule (zones, position, stationary, path, a better snapshot every 5 s), not
  // every processed frame: per object at most one every other frame it was in view.
  std::map<std::string, int> updates;
  std::map<std::string, double> seen_for;
  for (const auto& m : (*probe)->Messages("frigate/events")) {
    const json e = json::parse(m.payload);
    const std::string object = e["after"]["id"];
    if (e["type"] == "update") ++updates[object];
    if (e["type"] == "end") seen_for[object] = e["after"]["end_time"].get<double>() - e["after"]["start_time"].get<double>();
  }
  for (const auto& [object, n] : updates) {
    const double frames = seen_for.count(object) ? seen_for[object] / 0.2 + 1 : 55;
    EXPECT_LE(n, frames / 2 + 2) << object << ": " << n << " updates in " << frames << " frames";
  }
  EXPECT_TRUE((*probe)->WaitFor("frigate/demo/motion", test::PayloadIs("OFF")).has_value());
  auto stats = (*probe)->WaitFor("frigate/stats", {}, milliseconds(5000));
  ASSERT_TRUE(stats.has_value());
  EXPECT_TRUE(json::parse(stats->payload).contains("demo"));

  // Snapshot files under the state directory.
  EXPECT_TRUE(std::filesystem::exists(state.path() / "snapshots" / ("demo-" + id + ".jpg")));

  EXPECT_EQ(MetricValue(registry, "edged_camera_frames_total", {{"camera", "demo"}, {"stage", "in"}}), 110);
  EXPECT_EQ(MetricValue(registry, "edged_camera_frames_total", {{"camera", "demo"}, {"stage", "detected"}}), 55);
  EXPECT_EQ(MetricValue(registry, "edged_camera_frames_total", {{"camera", "demo"}, {"stage", "skipped"}}), 55);
  EXPECT_EQ(MetricValue(registry, "edged_camera_frames_total", {{"camera", "demo"}, {"stage", "decoded"}}), 55);
  EXPECT_EQ(MetricValue(registry, "edged_camera_frames_total", {{"camera", "demo"}, {"stage", "dropped"}}), 0)
      << "a replay waits for the pipeline: nothing dropped";
  EXPECT_EQ(MetricValue(registry, "edged_detector_device", {{"camera", "demo"}, {"device", "cpu"}}), 1);
  EXPECT_EQ(MetricValue(registry, "edged_detector_inference_seconds", {{"camera", "demo"}}), 55);
  EXPECT_GE(MetricValue(registry, "edged_camera_events_total", {{"camera", "demo"}, {"type", "started"}}), 1);
  EXPECT_EQ(MetricValue(registry, "edged_camera_events_total", {{"camera", "demo"}, {"type", "started"}}),
            MetricValue(registry, "edged_camera_events_total", {{"camera", "demo"}, {"type", "ended"}}));

  (*module)->Stop();
  EXPECT_TRUE((*probe)->WaitFor("frigate/available", test::PayloadIs("offline")).has_value());
  EXPECT_EQ((*module)->Start().code(), StatusCode::kFailedPrecondition) << "captures run once: reload builds anew";
  (*client)->Stop();
}

TEST(DetectPipeline, LiveCameraDropsWhatTheDetectorCannotTakeAndCountsIt) {
  // realtime: the file plays at its own 10 fps like a camera and every frame is sampled (fps 10); the
  // capture never waits for the detector, so each sampled frame is either processed or, replaced in
  // the 1-frame slot while HOG was busy, counted as dropped.
  auto broker = test::MosquittoBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  auto client = mqtt::Client::Create((*broker)->ClientConfig("edged_cameras_live"), nullptr);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Start().ok());
  test::TempDir state("edged-cameras-live");
  prometheus::Registry registry;
  config::CamerasConfig cams = DemoCameras(kVideo);
  cams.streams["demo"].fps = 10;
  CamerasModuleOptions options;
  options.realtime = true;
  options.max_frames = 30;  // 3 s
  options.seed = 1;
  auto module = CreateCamerasModule(cams, **client, registry, state.path(), options);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  ASSERT_TRUE((*module)->Start().ok());
  for (int i = 0; i < 300 && (*module)->health().message.find("ended") == std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_NE((*module)->health().message.find("ended"), std::string::npos) << (*module)->health().message;
  auto frames = [&](const std::string& stage) {
    return MetricValue(registry, "edged_camera_frames_total", {{"camera", "demo"}, {"stage", stage}});
  };
  std::printf("live camera: %.0f of 30 frames processed, %.0f dropped\n", frames("detected"), frames("dropped"));
  EXPECT_EQ(frames("in"), 30);
  EXPECT_EQ(frames("skipped"), 0);
  EXPECT_EQ(frames("decoded"), 30);
  EXPECT_GT(frames("detected"), 0);
  EXPECT_EQ(frames("detected") + frames("dropped"), frames("decoded"))
      << "every sampled frame is processed or counted as dropped";
  (*module)->Stop();
  (*client)->Stop();
}

TEST(DetectPipeline, MissingAndGarbageInputsAreClearErrors) {
  auto broker = test::MosquittoBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  auto client = mqtt::Client::Create((*broker)->ClientConfig("edged_cameras_bad"), nullptr);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Start().ok());
  test::TempDir dir("edged-cameras-bad");
  const auto garbage = dir.path() / "garbage.avi";
  std::ofstream(garbage) << std::string(4096, 'x');
  struct Case {
    std::string input;
    std::string message;
  };
  for (const Case& c : {Case{(dir.path() / "missing.avi").string(), "does not exist"},
                        Case{garbage.string(), "cannot open"}}) {
    prometheus::Registry registry;
    auto module = CreateCamerasModule(DemoCameras(c.input), **client, registry, dir.path(), {});
    ASSERT_TRUE(module.ok()) << module.status().ToString();
    ASSERT_TRUE((*module)->Start().ok());
    Health h;
    for (int i = 0; i < 100; ++i) {
      h = (*module)->health();
      if (h.message.find(c.message) != std::string::npos) break;
      std::this_thread::sleep_for(milliseconds(50));
    }
    EXPECT_EQ(h.state, HealthState::kWarning) << c.input;
    EXPECT_NE(h.message.find(c.message), std::string::npos) << h.message;
    EXPECT_NE(h.message.find(c.input), std::string::npos) << h.message;
    const auto t0 = std::chrono::steady_clock::now();
    (*module)->Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  }
  (*client)->Stop();
}

TEST(DetectPipeline, FactoryRejectsBadSettings) {
  auto broker = test::MosquittoBroker::Start();
  ASSERT_TRUE(broker.ok());
  auto client = mqtt::Client::Create((*broker)->ClientConfig("edged_cameras_cfg"), nullptr);
  ASSERT_TRUE(client.ok());
  test::TempDir dir("edged-cameras-cfg");
  struct Case {
    std::function<void(config::CamerasConfig&)> change;
    std::string message;
  };
  for (const Case& c : {
           Case{[](auto& cfg) { cfg.streams["demo"].fps = 0; }, "fps"},
           Case{[](auto& cfg) { cfg.streams["demo"].input.clear(); }, "input"},
           Case{[](auto& cfg) { cfg.streams["demo"].width = 640; }, "width and height"},
           Case{[](auto& cfg) { cfg.detector.type = "yolo"; }, "hog, onnx"},
           Case{[](auto& cfg) { cfg.topic_prefix = "a/#"; }, "topic_prefix"},
           Case{[](auto& cfg) { cfg.streams["bad name"] = cfg.streams["demo"]; }, "bad name"},
       }) {
    config::CamerasConfig cfg = DemoCameras(kVideo);
    c.change(cfg);
    prometheus::Registry registry;
    auto module = CreateCamerasModule(cfg, **client, registry, dir.path(), {});
    ASSERT_FALSE(module.ok()) << c.message;
    EXPECT_NE(module.status().message().find(c.message), std::string_view::npos) << module.status().ToString();
  }
}

}  // namespace
}  // namespace edged::detect
