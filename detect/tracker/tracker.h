// Object tracking, Frigate-style: detections of one camera are matched frame to frame by IoU into
// tracked objects with stable ids ("<start_time>-<random6>"), filtered per label (min_score, min_area,
// max_area), smoothed (a true positive needs the median of its recent scores to reach `threshold`),
// marked stationary when they stop moving, placed in zones, and ended after max_disappeared unseen.
// Pure logic: frame times come in, events come out; no clock, no I/O.
//
// Update events follow Frigate's rule (frigate/track/tracked_object.py update(), frigate/camera/state.py):
// one is published only when something meaningful changed - current zones, position_changes (the first
// move, and a stationary object moving again), stationary <-> active, a minute since the last event, or
// the path (the feet moved 5% of the frame diagonal since the last path point) - or, at most every
// 5 s, when a better snapshot was found since the last event (score 5 points higher, or 10% larger and
// not cut by the frame's edge). Not on every frame.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "config/config.h"
#include "detect/detectors/detector.h"

namespace edged::detect {

// What a tracked object looks like at one moment: the "before"/"after" of an event.
struct ObjectState {
  std::string id;
  std::string camera;
  std::string label;
  double frame_time = 0;  // last frame the object was seen in (seconds since the epoch)
  double start_time = 0;
  std::optional<double> end_time;
  float score = 0;      // latest detection score
  float top_score = 0;  // best median score so far
  bool false_positive = true;
  cv::Rect box;
  cv::Rect region;  // the region the detection came from
  bool active = true;
  bool stationary = false;
  int motionless_count = 0;   // frames since the object last moved
  int position_changes = 0;   // times it moved away from where it stood
  std::vector<std::string> current_zones;
  std::vector<std::string> entered_zones;  // in the order entered
  bool has_snapshot = false;

  bool operator==(const ObjectState&) const = default;
};

enum class EventType { kNew, kUpdate, kEnd };
std::string_view EventTypeName(EventType type);  // "new" | "update" | "end"

struct TrackerEvent {
  EventType type;
  ObjectState before;  // what the last published event said (for new: the state before it counted)
  ObjectState after;
  bool best_frame = false;  // this frame is the object's best so far: take its snapshot now
};

// A detection with the region it was found in.
struct RegionDetection {
  Detection detection;
  cv::Rect region;
};

struct TrackerOptions {
  double match_iou = 0.2;   // a detection continues an object when their boxes overlap this much
  double moved_iou = 0.6;   // below this overlap with where it stood, an object has moved
  int score_history = 10;   // scores in the median
  double snapshot_update_interval = 5.0;  // a better snapshot alone is published at most this often (s)
  double heartbeat_interval = 60.0;       // an object still seen is published at least this often (s)
  // The detect resolution: the path (and its updates) and the frame-edge rule of snapshots need it;
  // empty: no path updates, no edge rule.
  cv::Size frame_size;
};

class ObjectTracker {
 public:
  // `seed` feeds the random part of ids (tests pass a fixed one).
  ObjectTracker(std::string camera, const config::CameraConfig& config, TrackerOptions options = {},
                std::uint64_t seed = std::random_device{}());

  // Feeds the detections of one frame taken at `frame_time`; returns the events to publish, in order:
  // ends, then new objects and updates. Every active object that no detection matches counts a miss
  // (score 0 in its history); one unseen for max_disappeared ends.
  std::vector<TrackerEvent> Update(double frame_time, const std::vector<RegionDetection>& detections);

  // Ends every object (camera stopping); returns the end events of those that were published.
  std::vector<TrackerEvent> EndAll();

  // Active objects (true and false positives).
  std::vector<ObjectState> Objects() const;
  // Per tracked label, how many true positives are in view now (every tracked label listed, 0 too).
  std::map<std::string, int> Counts() const;
  // True positives whose best frame is the last Update()'s frame (Frigate sends the snapshot then, not
  // with the next event): take their snapshot from that frame, then MarkSnapshot(). Events also say
  // best_frame for them.
  const std::vector<std::string>& better_snapshots() const { return better_snapshots_; }
  void MarkSnapshot(const std::string& id);

  // Whether a detection passes the label's filter (tracked label, min_score, min/max area).
  bool Accepts(const Detection& detection) const;

 private:
  struct Thumbnail {
    float score = 0;
    cv::Rect box;
  };
  struct Tracked {
    ObjectState state;
    ObjectState published;  // the "before" of the next event
    bool ever_published = false;
    std::deque<float> scores;
    cv::Rect position;  // where it stood when it last moved
    double position_since = 0;
    double last_published = 0;
    std::optional<Thumbnail> thumbnail;  // the detection of its best frame so far
    double thumbnail_time = -1;          // when that was (Frigate's last_updated)
    std::optional<cv::Point2d> path_point;  // last point of its path (feet, 0..1 of the frame)
    int path_points = 0;
  };

  const config::ObjectFilter& Filter(const std::string& label) const;
  std::vector<std::string> ZonesOf(const ObjectState& object) const;
  std::string NewId(double frame_time);
  // Applies a frame to an object; true when something significant changed (zones, position changes,
  // stationary; the first frame sets them without counting).
  bool Advance(Tracked& t, double frame_time, const Detection* detection, const cv::Rect* region);
  // Frigate's is_better_thumbnail for a detection seen now; takes it when better.
  bool TakeThumbnail(Tracked& t, double frame_time, const Detection& detection) const;
  // Frigate's path: true when the feet moved far enough to add a point.
  bool ExtendPath(Tracked& t) const;
  void Publish(Tracked& t, EventType type, const ObjectState& before, double frame_time, bool best_frame,
               std::vector<TrackerEvent>* out);

  std::string camera_;
  config::CameraConfig config_;
  TrackerOptions options_;
  std::mt19937_64 rng_;
  std::vector<Tracked> objects_;
  std::vector<std::string> better_snapshots_;
};

}  // namespace edged::detect
