#include "detect/tracker/tracker.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>

#include <opencv2/imgproc.hpp>

#include "detect/regions/regions.h"

namespace edged::detect {
namespace {

float Median(std::deque<float> values) {
  if (values.empty()) return 0.f;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.f;
}

const config::ObjectFilter kDefaultFilter{};

}  // namespace

std::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kNew:
      return "new";
    case EventType::kUpdate:
      return "update";
    case EventType::kEnd:
      return "end";
  }
  return "update";
}

ObjectTracker::ObjectTracker(std::string camera, const config::CameraConfig& config, TrackerOptions options,
                             std::uint64_t seed)
    : camera_(std::move(camera)), config_(config), options_(options), rng_(seed) {}

const config::ObjectFilter& ObjectTracker::Filter(const std::string& label) const {
  auto it = config_.filters.find(label);
  return it == config_.filters.end() ? kDefaultFilter : it->second;
}

bool ObjectTracker::Accepts(const Detection& d) const {
  if (!config_.track.empty() && std::find(config_.track.begin(), config_.track.end(), d.label) == config_.track.end()) {
    return false;
  }
  const config::ObjectFilter& f = Filter(d.label);
  const long area = static_cast<long>(d.box.width) * d.box.height;
  return d.score >= f.min_score && area >= f.min_area && area <= f.max_area;
}

std::string ObjectTracker::NewId(double frame_time) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::uniform_int_distribution<int> pick(0, 35);
  char suffix[7];
  for (int i = 0; i < 6; ++i) suffix[i] = kAlphabet[pick(rng_)];
  suffix[6] = '\0';
  char id[64];
  std::snprintf(id, sizeof(id), "%.6f-%s", frame_time, suffix);
  return id;
}

std::vector<std::string> ObjectTracker::ZonesOf(const ObjectState& object) const {
  std::vector<std::string> zones;
  // Frigate places an object by the bottom centre of its box: where it stands.
  const cv::Point2f foot(object.box.x + object.box.width / 2.f, static_cast<float>(object.box.y + object.box.height));
  for (const auto& [name, zone] : config_.zones) {
    if (zone.coordinates.size() < 3) continue;
    if (!zone.objects.empty() && std::find(zone.objects.begin(), zone.objects.end(), object.label) == zone.objects.end()) {
      continue;
    }
    std::vector<cv::Point2f> poly;
    for (const auto& p : zone.coordinates) poly.emplace_back(static_cast<float>(p.x), static_cast<float>(p.y));
    if (cv::pointPolygonTest(poly, foot, false) >= 0) zones.push_back(name);
  }
  return zones;
}

bool ObjectTracker::Advance(Tracked& t, double frame_time, const Detection* detection, const cv::Rect* region) {
  ObjectState& s = t.state;
  bool significant = false;
  if (detection != nullptr) {
    s.frame_time = frame_time;
    s.score = detection->score;
    s.box = detection->box;
    s.region = *region;
    t.scores.push_back(detection->score);
    if (regions::Iou(s.box, t.position) < options_.moved_iou) {
      // Frigate counts the first move and a stationary object moving again, not every step of a walk.
      if (t.position.area() > 0 && (s.position_changes == 0 || s.stationary)) {
        s.position_changes++;
        significant = true;
      }
      t.position = s.box;
      t.position_since = frame_time;
      s.motionless_count = 0;
    } else {
      s.motionless_count++;
    }
  } else {
    t.scores.push_back(0.f);  // looked for and not found: a miss drags the median down
  }
  while (static_cast<int>(t.scores.size()) > options_.score_history) t.scores.pop_front();
  // A better top score alone is no reason to publish (Frigate): a better snapshot is, at most every 5 s.
  const float computed = Median(t.scores);
  s.top_score = std::max(s.top_score, computed);
  // Once a true positive, always a true positive (as Frigate): misses later do not hide it again.
  if (s.false_positive) s.false_positive = computed < Filter(s.label).threshold;
  const bool stationary =
      frame_time - t.position_since >= static_cast<double>(config_.stationary_after.count());
  if (stationary != s.stationary) {
    s.stationary = stationary;
    significant = true;
  }
  std::vector<std::string> zones = ZonesOf(s);
  if (zones != s.current_zones) {
    s.current_zones = zones;
    significant = true;
    for (const auto& z : zones) {
      if (std::find(s.entered_zones.begin(), s.entered_zones.end(), z) == s.entered_zones.end()) {
        s.entered_zones.push_back(z);
      }
    }
  }
  return significant;
}

bool ObjectTracker::TakeThumbnail(Tracked& t, double frame_time, const Detection& d) const {
  // frigate/util/image.py is_better_thumbnail (people and cars without face/plate attributes here).
  auto on_edge = [&](const cv::Rect& b) {
    const cv::Size f = options_.frame_size;
    return !f.empty() && (b.x == 0 || b.y == 0 || b.x + b.width == f.width - 1 || b.y + b.height == f.height - 1);
  };
  bool better = !t.thumbnail.has_value();
  if (!better && !(on_edge(d.box) && !on_edge(t.thumbnail->box))) {
    better = d.score > t.thumbnail->score + 0.05f ||
             static_cast<double>(d.box.area()) > static_cast<double>(t.thumbnail->box.area()) * 1.1;
  }
  if (!better) return false;
  t.thumbnail = Thumbnail{d.score, d.box};
  t.thumbnail_time = frame_time;
  return true;
}

bool ObjectTracker::ExtendPath(Tracked& t) const {
  const cv::Size f = options_.frame_size;
  if (f.empty()) return false;
  const cv::Rect& b = t.state.box;
  auto round4 = [](double v) { return std::round(v * 1e4) / 1e4; };
  const cv::Point2d feet(round4((b.x + b.width / 2.0) / f.width), round4(static_cast<double>(b.y + b.height) / f.height));
  // 5% of the frame diagonal, in the units of the longer side (Frigate's threshold).
  const double threshold = 0.05 * std::hypot(f.width, f.height) / std::max(f.width, f.height);
  if (t.path_point && t.path_points != 1 && cv::norm(feet - *t.path_point) < threshold) return false;
  t.path_point = feet;
  ++t.path_points;
  return true;
}

std::vector<TrackerEvent> ObjectTracker::Update(double frame_time, const std::vector<RegionDetection>& detections) {
  std::vector<const RegionDetection*> accepted;
  for (const auto& d : detections) {
    if (Accepts(d.detection)) accepted.push_back(&d);
  }
  // Greedy matching, best overlaps first, same label only.
  std::vector<std::tuple<double, size_t, size_t>> pairs;
  for (size_t i = 0; i < objects_.size(); ++i) {
    for (size_t j = 0; j < accepted.size(); ++j) {
      if (objects_[i].state.label != accepted[j]->detection.label) continue;
      const double iou = regions::Iou(objects_[i].state.box, accepted[j]->detection.box);
      if (iou >= options_.match_iou) pairs.emplace_back(iou, i, j);
    }
  }
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  std::vector<int> match_of_object(objects_.size(), -1);
  std::vector<bool> detection_used(accepted.size(), false);
  for (const auto& [iou, i, j] : pairs) {
    if (match_of_object[i] >= 0 || detection_used[j]) continue;
    match_of_object[i] = static_cast<int>(j);
    detection_used[j] = true;
  }

  better_snapshots_.clear();
  std::vector<TrackerEvent> ends, others;
  const double max_unseen = static_cast<double>(config_.max_disappeared.count());
  std::vector<Tracked> kept;
  for (size_t i = 0; i < objects_.size(); ++i) {
    Tracked& t = objects_[i];
    const ObjectState before = t.state;
    const RegionDetection* d = match_of_object[i] >= 0 ? accepted[match_of_object[i]] : nullptr;
    if (d == nullptr && frame_time - t.state.frame_time > max_unseen) {
      if (t.ever_published) {
        t.state.active = false;
        t.state.end_time = t.state.frame_time;
        ends.push_back({EventType::kEnd, t.published, t.state, false});
      }
      continue;  // forgotten
    }
    const bool significant = Advance(t, frame_time, d ? &d->detection : nullptr, d ? &d->region : nullptr);
    if (!t.state.false_positive) {
      const bool best = d != nullptr && TakeThumbnail(t, frame_time, d->detection);
      if (best) better_snapshots_.push_back(t.state.id);
      const bool path = ExtendPath(t);
      if (!t.ever_published) {
        Publish(t, EventType::kNew, before, frame_time, best, &others);
      } else if (significant || path ||
                 frame_time - t.published.frame_time > options_.heartbeat_interval ||
                 (frame_time - t.last_published > options_.snapshot_update_interval &&
                  t.thumbnail_time > t.last_published)) {
        Publish(t, EventType::kUpdate, t.published, frame_time, best, &others);
      }
    }
    kept.push_back(std::move(t));
  }
  for (size_t j = 0; j < accepted.size(); ++j) {
    if (detection_used[j]) continue;
    Tracked t;
    t.state.id = NewId(frame_time);
    t.state.camera = camera_;
    t.state.label = accepted[j]->detection.label;
    t.state.start_time = frame_time;
    t.position_since = frame_time;
    const ObjectState before = t.state;
    Advance(t, frame_time, &accepted[j]->detection, &accepted[j]->region);
    if (!t.state.false_positive) {
      TakeThumbnail(t, frame_time, accepted[j]->detection);
      better_snapshots_.push_back(t.state.id);
      ExtendPath(t);
      Publish(t, EventType::kNew, before, frame_time, true, &others);
    }
    kept.push_back(std::move(t));
  }
  objects_ = std::move(kept);
  ends.insert(ends.end(), others.begin(), others.end());
  return ends;
}

void ObjectTracker::Publish(Tracked& t, EventType type, const ObjectState& before, double frame_time, bool best_frame,
                            std::vector<TrackerEvent>* out) {
  out->push_back({type, before, t.state, best_frame});
  t.ever_published = true;
  t.published = t.state;
  t.last_published = frame_time;
}

std::vector<TrackerEvent> ObjectTracker::EndAll() {
  std::vector<TrackerEvent> ends;
  for (Tracked& t : objects_) {
    if (!t.ever_published) continue;
    t.state.active = false;
    t.state.end_time = t.state.frame_time;  // the last time it was seen, not the stop time
    ends.push_back({EventType::kEnd, t.published, t.state, false});
  }
  objects_.clear();
  better_snapshots_.clear();
  return ends;
}

std::vector<ObjectState> ObjectTracker::Objects() const {
  std::vector<ObjectState> out;
  for (const Tracked& t : objects_) out.push_back(t.state);
  return out;
}

std::map<std::string, int> ObjectTracker::Counts() const {
  std::map<std::string, int> counts;
  for (const auto& label : config_.track) counts[label] = 0;
  for (const Tracked& t : objects_) {
    if (!t.state.false_positive) counts[t.state.label]++;
  }
  return counts;
}

void ObjectTracker::MarkSnapshot(const std::string& id) {
  for (Tracked& t : objects_) {
    if (t.state.id == id) {
      t.state.has_snapshot = true;
      t.published.has_snapshot = true;
    }
  }
}

}  // namespace edged::detect
