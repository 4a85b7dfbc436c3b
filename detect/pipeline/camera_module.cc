#include "detect/pipeline/camera_module.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <opencv2/imgproc.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "base/logging.h"
#include "detect/capture/capture.h"
#include "detect/events/events.h"
#include "detect/pipeline/pipeline.h"
#include "mqtt/client.h"

namespace edged::detect {
namespace {

using Clock = std::chrono::steady_clock;

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Bounded open and read, so a dead camera never blocks Stop() for long.
constexpr std::chrono::milliseconds kOpenTimeout{5000};
constexpr std::chrono::milliseconds kReadTimeout{5000};

CaptureOptions CaptureOptionsFor(const std::string& name, const config::CameraConfig& camera,
                                 const CamerasModuleOptions& options) {
  CaptureOptions o = CaptureOptions::FromConfig(name, camera);
  o.realtime_files = options.realtime;
  o.wait_for_consumer = !options.realtime;  // replays process every sampled frame
  o.max_frames = options.max_frames > 0 ? static_cast<uint64_t>(options.max_frames) : 0;
  return o;
}

// Families shared by every camera of the module.
struct Metrics {
  prometheus::Family<prometheus::Gauge>& up;
  prometheus::Family<prometheus::Counter>& frames;
  prometheus::Family<prometheus::Gauge>& fps;
  prometheus::Family<prometheus::Counter>& reconnects;
  prometheus::Family<prometheus::Histogram>& motion_seconds;
  prometheus::Family<prometheus::Histogram>& inference_seconds;
  prometheus::Family<prometheus::Gauge>& device;
  prometheus::Family<prometheus::Counter>& events;

  explicit Metrics(prometheus::Registry& r)
      : up(prometheus::BuildGauge().Name("edged_camera_up").Help("1 while the camera delivers frames").Register(r)),
        frames(prometheus::BuildCounter()
                   .Name("edged_camera_frames_total")
                   .Help("Frames per stage: in (read off the stream), skipped (above the detection fps), decoded "
                         "(sampled and converted for detection), dropped (replaced while the detector was busy), "
                         "detected (processed)")
                   .Register(r)),
        fps(prometheus::BuildGauge().Name("edged_camera_fps").Help("Frames per second per stage").Register(r)),
        reconnects(prometheus::BuildCounter()
                       .Name("edged_camera_reconnects_total")
                       .Help("Times the stream was reopened after it failed")
                       .Register(r)),
        motion_seconds(prometheus::BuildHistogram()
                           .Name("edged_camera_motion_seconds")
                           .Help("Motion stage time per processed frame")
                           .Register(r)),
        inference_seconds(prometheus::BuildHistogram()
                              .Name("edged_detector_inference_seconds")
                              .Help("Detector time per processed frame, all regions together")
                              .Register(r)),
        device(prometheus::BuildGauge()
                   .Name("edged_detector_device")
                   .Help("1 for the device each camera's detector runs on")
                   .Register(r)),
        events(prometheus::BuildCounter()
                   .Name("edged_camera_events_total")
                   .Help("Tracked-object events: started (new) and ended (end)")
                   .Register(r)) {}
};

const prometheus::Histogram::BucketBoundaries kSecondsBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                 0.05,   0.1,   0.25,   0.5,   1,    2.5};

class CameraWorker {
 public:
  CameraWorker(std::string name, const config::CameraConfig& camera, const std::string& prefix,
               std::unique_ptr<Detector> detector, mqtt::Client& mqtt, Metrics& metrics, SnapshotStore& snapshots,
               const CamerasModuleOptions& options)
      : name_(std::move(name)),
        config_(camera),
        prefix_(prefix),
        detector_(std::move(detector)),
        mqtt_(mqtt),
        snapshots_(snapshots),
        options_(options),
        log_(Logger("cameras")),
        up_(metrics.up.Add({{"camera", name_}})),
        in_(metrics.frames.Add({{"camera", name_}, {"stage", "in"}})),
        decoded_(metrics.frames.Add({{"camera", name_}, {"stage", "decoded"}})),
        detected_(metrics.frames.Add({{"camera", name_}, {"stage", "detected"}})),
        skipped_(metrics.frames.Add({{"camera", name_}, {"stage", "skipped"}})),
        dropped_(metrics.frames.Add({{"camera", name_}, {"stage", "dropped"}})),
        fps_in_(metrics.fps.Add({{"camera", name_}, {"stage", "in"}})),
        fps_decoded_(metrics.fps.Add({{"camera", name_}, {"stage", "decoded"}})),
        fps_detected_(metrics.fps.Add({{"camera", name_}, {"stage", "detected"}})),
        fps_skipped_(metrics.fps.Add({{"camera", name_}, {"stage", "skipped"}})),
        fps_dropped_(metrics.fps.Add({{"camera", name_}, {"stage", "dropped"}})),
        reconnects_(metrics.reconnects.Add({{"camera", name_}})),
        motion_seconds_(metrics.motion_seconds.Add({{"camera", name_}}, kSecondsBuckets)),
        inference_seconds_(metrics.inference_seconds.Add({{"camera", name_}}, kSecondsBuckets)),
        started_(metrics.events.Add({{"camera", name_}, {"type", "started"}})),
        ended_(metrics.events.Add({{"camera", name_}, {"type", "ended"}})),
        capture_(MakeOpenCvFrameSource(camera.input, FrameSourceOptions{kOpenTimeout, kReadTimeout}),
                 CaptureOptionsFor(name_, camera, options)) {
    metrics.device.Add({{"camera", name_}, {"device", std::string(DeviceName(detector_->device()))}}).Set(1);
    detector_type_ = std::string(detector_->type());
    detector_device_ = std::string(DeviceName(detector_->device()));
    SetHealth(Health::Warning("camera " + name_ + ": not started"));
  }

  ~CameraWorker() { Stop(); }

  void Start() {
    stop_ = false;
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    stop_ = true;
    capture_.Stop();  // wakes the worker's Next() at once
    if (thread_.joinable()) thread_.join();
  }

  Health health() const {
    std::lock_guard lock(health_mu_);
    return health_;
  }

  const std::string& name() const { return name_; }

  // Frames per second per stage since the last call; updates the fps gauges.
  CameraStats TakeStats(double seconds) {
    auto rate = [&](prometheus::Counter& c, double& last, prometheus::Gauge& g) {
      const double v = c.Value();
      const double r = seconds > 0 ? (v - last) / seconds : 0;
      last = v;
      g.Set(r);
      return r;
    };
    CameraStats s;
    s.camera_fps = rate(in_, last_in_, fps_in_);
    rate(decoded_, last_decoded_, fps_decoded_);  // the gauge only: Frigate's stats have no decoded fps
    s.process_fps = rate(detected_, last_detected_, fps_detected_);
    s.detection_fps = s.process_fps;
    rate(skipped_, last_skipped_, fps_skipped_);  // sampling down to the detection fps: no news
    // Frigate's skipped_fps: frames the detection process could not take because it was busy.
    s.skipped_fps = rate(dropped_, last_dropped_, fps_dropped_);
    s.up = up_.Value() > 0;
    return s;
  }

  DetectorStats TakeDetectorStats() {
    std::lock_guard lock(health_mu_);
    DetectorStats d{detector_type_, detector_device_, inference_count_ ? inference_ms_sum_ / inference_count_ : 0};
    inference_ms_sum_ = 0;
    inference_count_ = 0;
    return d;
  }

 private:
  void SetHealth(Health h) {
    std::lock_guard lock(health_mu_);
    health_ = std::move(h);
  }

  // Brings the metrics and the health up to date with the capture's counters.
  void SyncCapture() {
    const CaptureStats now = capture_.stats();
    auto add = [](prometheus::Counter& c, uint64_t current, uint64_t& last) {
      if (current > last) c.Increment(static_cast<double>(current - last));
      last = current;
    };
    add(in_, now.decoded, seen_.decoded);
    add(skipped_, now.skipped, seen_.skipped);
    add(decoded_, now.delivered, seen_.delivered);
    add(dropped_, now.dropped, seen_.dropped);
    add(reconnects_, now.reconnects, seen_.reconnects);
    if (now.up && now.last_error.empty() && now.decoded > 0) {
      if (!health().ok()) {
        log_->info("camera {}: receiving frames from {}", name_, RedactUrl(config_.input));
        SetHealth(Health::Ok());
      }
      up_.Set(1);  // after the health, so whoever sees up == 1 sees a healthy camera
    } else {
      up_.Set(0);
      if (!now.last_error.empty()) SetHealth(Health::Warning(now.last_error + "; reconnecting with backoff"));
    }
  }

  // The frame's time in seconds since the epoch: the wall clock when it was decoded (live), or the
  // start time plus its place in the file (replays), so a replay's events carry the video's own times.
  double FrameTime(const Frame& f) const {
    if (!options_.realtime) return replay_start_ + f.stream_time_s;
    const auto age = std::chrono::steady_clock::now() - f.decoded_at;
    return WallNow() - std::chrono::duration<double>(age).count();
  }

  void Run() {
    replay_start_ = WallNow();
    capture_.Start();
    while (!stop_) {
      std::optional<Frame> frame = capture_.Next(std::chrono::milliseconds(250));
      SyncCapture();
      if (frame) {
        ProcessFrame(*frame, FrameTime(*frame));
        continue;
      }
      if (capture_.stats().ended) {
        log_->info("camera {}: end of {}", name_, RedactUrl(config_.input));
        FinishObjects();  // before the health says so: whoever waits for "ended" sees the end events
        SetHealth(Health::Warning("camera " + name_ + ": the input ended (files play once unless loop: true)"));
        up_.Set(0);
        return;
      }
    }
    FinishObjects();
  }

  void ProcessFrame(const Frame& frame, double t) {
    const cv::Size size(config_.width > 0 ? config_.width : frame.bgr.cols,
                        config_.height > 0 ? config_.height : frame.bgr.rows);
    const cv::Mat* img = &frame.bgr;
    cv::Mat luma = frame.luma;  // the capture's Y plane, unless the frame is resized for detection
    if (frame.bgr.size() != size) {
      cv::resize(frame.bgr, sized_, size, 0, 0, cv::INTER_AREA);
      img = &sized_;
      luma = cv::Mat();
    }
    if (!pipeline_) {
      auto p = CameraPipeline::Create(name_, config_, std::move(detector_), size, options_.seed);
      if (!p.ok()) {
        log_->error("{}", p.status().message());
        SetHealth(Health::Failed(std::string(p.status().message())));
        stop_ = true;
        return;
      }
      pipeline_ = std::move(*p);
    }
    auto result = pipeline_->Process(*img, luma, t);
    if (!result.ok()) {
      log_->warn("{}", result.status().message());
      SetHealth(Health::Warning(std::string(result.status().message())));
      return;
    }
    detected_.Increment();
    motion_seconds_.Observe(result->motion_ms / 1000);
    inference_seconds_.Observe(result->detect_ms / 1000);
    {
      std::lock_guard lock(health_mu_);
      inference_ms_sum_ += result->detect_ms;
      inference_count_++;
    }
    PublishMotion(*result);
    PublishSnapshots(result->events, *img);
    PublishEvents(result->events);
    PublishCounts();
  }

  void PublishMotion(const FrameResult& r) {
    if (!r.motion.empty() && !r.calibrating) {
      last_motion_ = r.time;
      if (!motion_on_) {
        motion_on_ = true;
        mqtt_.Publish(MotionTopic(prefix_, name_), "ON", 1, true);
      }
    } else if (motion_on_ && r.time - last_motion_ >= options_.motion_off_delay_seconds) {
      motion_on_ = false;
      mqtt_.Publish(MotionTopic(prefix_, name_), "OFF", 1, true);
    }
  }

  // Frigate sends an object's snapshot on the frame its best view appears, not with the next event.
  void PublishSnapshots(std::vector<TrackerEvent>& events, const cv::Mat& frame) {
    const std::vector<std::string>& ids = pipeline_->tracker().better_snapshots();
    if (ids.empty() || !config_.snapshots.enabled || frame.empty()) return;
    for (const ObjectState& o : pipeline_->tracker().Objects()) {
      if (std::find(ids.begin(), ids.end(), o.id) == ids.end()) continue;
      auto jpeg = SnapshotJpeg(frame, o, config_.snapshots);
      if (!jpeg.ok()) {
        log_->warn("camera {}: {}", name_, jpeg.status().message());
        continue;
      }
      mqtt_.Publish(SnapshotTopic(prefix_, name_, o.label), *jpeg, 0, true);
      auto saved = snapshots_.Save(name_, o.id, *jpeg);
      if (!saved.ok()) log_->warn("camera {}: snapshot not saved: {}", name_, saved.status().message());
      pipeline_->tracker().MarkSnapshot(o.id);
      for (TrackerEvent& e : events) {
        if (e.after.id == o.id) e.after.has_snapshot = true;
      }
    }
  }

  void PublishEvents(const std::vector<TrackerEvent>& events) {
    for (const TrackerEvent& e : events) {
      if (e.type == EventType::kNew) started_.Increment();
      if (e.type == EventType::kEnd) ended_.Increment();
      mqtt_.Publish(EventsTopic(prefix_), EventPayload(e), 1, false);
    }
  }

  void PublishCounts() {
    for (const auto& [label, n] : pipeline_->tracker().Counts()) {
      auto it = counts_.find(label);
      if (it != counts_.end() && it->second == n) continue;
      counts_[label] = n;
      mqtt_.Publish(CountTopic(prefix_, name_, label), std::to_string(n), 1, true);
    }
  }

  void FinishObjects() {
    if (!pipeline_) return;
    std::vector<TrackerEvent> ends = pipeline_->Finish();
    PublishEvents(ends);
    PublishCounts();
    if (motion_on_) {
      motion_on_ = false;
      mqtt_.Publish(MotionTopic(prefix_, name_), "OFF", 1, true);
    }
  }

  std::string name_;
  config::CameraConfig config_;
  std::string prefix_;
  std::unique_ptr<Detector> detector_;
  std::unique_ptr<CameraPipeline> pipeline_;
  mqtt::Client& mqtt_;
  SnapshotStore& snapshots_;
  const CamerasModuleOptions& options_;
  std::shared_ptr<spdlog::logger> log_;
  std::string detector_type_, detector_device_;

  prometheus::Gauge& up_;
  prometheus::Counter &in_, &decoded_, &detected_, &skipped_, &dropped_;
  prometheus::Gauge &fps_in_, &fps_decoded_, &fps_detected_, &fps_skipped_, &fps_dropped_;
  prometheus::Counter& reconnects_;
  prometheus::Histogram &motion_seconds_, &inference_seconds_;
  prometheus::Counter &started_, &ended_;
  double last_in_ = 0, last_decoded_ = 0, last_detected_ = 0, last_skipped_ = 0, last_dropped_ = 0;

  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex health_mu_;
  Health health_;
  double inference_ms_sum_ = 0;
  long inference_count_ = 0;

  // Worker-thread state.
  Capture capture_;
  CaptureStats seen_;  // what SyncCapture() last added to the counters
  double replay_start_ = 0;
  cv::Mat sized_;
  bool motion_on_ = false;
  double last_motion_ = 0;
  std::map<std::string, int> counts_;
};

// What the HomeAssistant birth-message handler needs; it outlives the module inside the MQTT client.
struct DiscoveryState {
  std::mutex mu;
  bool alive = true;
  std::vector<MqttMessage> messages;
};

class CamerasModule final : public Module {
 public:
  CamerasModule(const config::CamerasConfig& config, mqtt::Client& mqtt, prometheus::Registry& registry,
                std::filesystem::path state_dir, CamerasModuleOptions options)
      : config_(config),
        mqtt_(mqtt),
        metrics_(registry),
        snapshots_(std::move(state_dir) / "snapshots"),
        options_(std::move(options)),
        discovery_(std::make_shared<DiscoveryState>()) {}

  ~CamerasModule() override {
    Stop();
    std::lock_guard lock(discovery_->mu);
    discovery_->alive = false;
  }

  Status AddCamera(const std::string& name, const config::CameraConfig& camera) {
    auto detector = CreateDetector(config_.detector);
    if (!detector.ok()) return detector.status().WithContext("camera " + name);
    workers_.push_back(std::make_unique<CameraWorker>(name, camera, config_.topic_prefix, std::move(*detector), mqtt_,
                                                      metrics_, snapshots_, options_));
    if (options_.homeassistant.enabled) {
      auto msgs = HomeAssistantDiscovery(options_.homeassistant.discovery_topic, config_.topic_prefix, name, camera.track);
      discovery_->messages.insert(discovery_->messages.end(), msgs.begin(), msgs.end());
    }
    return OkStatus();
  }

  std::string_view name() const override { return "cameras"; }

  Status Start() override {
    if (started_) return OkStatus();
    if (stopped_) {
      // Each camera's capture thread runs once; the daemon builds a new module on reload.
      return FailedPreconditionError("cameras: a stopped module cannot start again; create a new one");
    }
    started_ = true;
    start_time_ = Clock::now();
    mqtt_.Publish(AvailableTopic(config_.topic_prefix), "online", 1, true);
    for (const auto& m : discovery_->messages) mqtt_.Publish(m.topic, m.payload, 1, m.retain);
    if (options_.homeassistant.enabled && !options_.homeassistant.status_topic.empty()) {
      // HomeAssistant forgets discovery when it restarts; its birth message asks for it again.
      std::weak_ptr<DiscoveryState> weak = discovery_;
      mqtt::Client* client = &mqtt_;
      mqtt_.Subscribe(options_.homeassistant.status_topic, 1, [weak, client](const mqtt::Message& m) {
        auto state = weak.lock();
        if (!state || m.payload != "online") return;
        std::lock_guard lock(state->mu);
        if (!state->alive) return;
        for (const auto& d : state->messages) client->Publish(d.topic, d.payload, 1, d.retain);
      });
    }
    for (auto& w : workers_) w->Start();
    housekeeping_ = std::thread([this] { Housekeeping(); });
    return OkStatus();
  }

  void Stop() override {
    if (!started_) return;
    started_ = false;
    stopped_ = true;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (housekeeping_.joinable()) housekeeping_.join();
    for (auto& w : workers_) w->Stop();
    PublishStats();
    mqtt_.Publish(AvailableTopic(config_.topic_prefix), "offline", 1, true);
  }

  Health health() const override {
    Health worst = Health::Ok();
    for (const auto& w : workers_) {
      Health h = w->health();
      if (static_cast<int>(h.state) > static_cast<int>(worst.state)) worst = h;
    }
    return worst;
  }

 private:
  void PublishStats() {
    const double seconds = std::chrono::duration<double>(Clock::now() - last_stats_).count();
    last_stats_ = Clock::now();
    std::map<std::string, CameraStats> cams;
    std::map<std::string, DetectorStats> dets;
    for (auto& w : workers_) {
      cams[w->name()] = w->TakeStats(seconds);
      DetectorStats d = w->TakeDetectorStats();
      dets[d.type] = d;
    }
    const double uptime = std::chrono::duration<double>(Clock::now() - start_time_).count();
    mqtt_.Publish(StatsTopic(config_.topic_prefix), StatsPayload(cams, dets, uptime), 0, false);
  }

  void Housekeeping() {
    last_stats_ = Clock::now();
    auto next_prune = Clock::now();
    std::unique_lock lock(mu_);
    while (!stopping_) {
      if (Clock::now() >= next_prune) {
        std::chrono::seconds retain{0};
        for (const auto& [n, c] : config_.streams) retain = std::max(retain, c.snapshots.retain);
        auto pruned = snapshots_.Prune(std::filesystem::file_time_type::clock::now(), retain);
        if (!pruned.ok()) Logger("cameras")->warn("snapshot retention: {}", pruned.status().message());
        next_prune = Clock::now() + std::chrono::minutes(10);
      }
      if (cv_.wait_for(lock, std::chrono::duration<double>(options_.stats_interval_seconds),
                       [this] { return stopping_; })) {
        break;
      }
      lock.unlock();
      PublishStats();
      lock.lock();
    }
  }

  config::CamerasConfig config_;
  mqtt::Client& mqtt_;
  Metrics metrics_;
  SnapshotStore snapshots_;
  CamerasModuleOptions options_;
  std::shared_ptr<DiscoveryState> discovery_;
  std::vector<std::unique_ptr<CameraWorker>> workers_;
  bool started_ = false;
  bool stopped_ = false;
  Clock::time_point start_time_, last_stats_;
  std::thread housekeeping_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace

StatusOr<std::unique_ptr<Module>> CreateCamerasModule(const config::CamerasConfig& config, mqtt::Client& mqtt,
                                                      prometheus::Registry& registry,
                                                      const std::filesystem::path& state_dir,
                                                      CamerasModuleOptions options) {
  if (config.topic_prefix.empty() || config.topic_prefix.find_first_of("#+") != std::string::npos) {
    return InvalidArgumentError("cameras.topic_prefix: '" + config.topic_prefix +
                                "' must be non-empty and hold no MQTT wildcards");
  }
  if (options.stats_interval_seconds <= 0) return InvalidArgumentError("cameras: stats interval must be positive");
  std::unique_ptr<CamerasModule> module;
  try {
    module = std::make_unique<CamerasModule>(config, mqtt, registry, state_dir, std::move(options));
  } catch (const std::exception& e) {
    return InvalidArgumentError(std::string("cameras: metrics registration failed: ") + e.what());
  }
  for (const auto& [name, camera] : config.streams) {
    if (!camera.enabled) continue;
    if (name.empty() || name.find_first_of("/#+ ") != std::string::npos) {
      return InvalidArgumentError("cameras.streams: camera name '" + name + "' must be non-empty, without / # + or spaces");
    }
    if (camera.input.empty()) return InvalidArgumentError("cameras.streams." + name + ".input: no input configured");
    if (!(camera.fps > 0 && camera.fps <= 60)) {
      return InvalidArgumentError("cameras.streams." + name + ".fps: " + std::to_string(camera.fps) + " is outside (0, 60]");
    }
    if ((camera.width > 0) != (camera.height > 0)) {
      return InvalidArgumentError("cameras.streams." + name + ": set both width and height, or neither");
    }
    RETURN_IF_ERROR(module->AddCamera(name, camera));
  }
  return std::unique_ptr<Module>(std::move(module));
}

}  // namespace edged::detect
