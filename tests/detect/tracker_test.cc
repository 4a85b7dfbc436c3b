// Tracker: table-driven frames in, events out.
#include "detect/tracker/tracker.h"

#include <regex>

#include <gtest/gtest.h>

namespace edged::detect {
namespace {

config::CameraConfig Camera() {
  config::CameraConfig c;
  c.track = {"person", "car"};
  c.max_disappeared = config::Seconds(2);
  c.stationary_after = config::Seconds(3);
  c.filters["person"] = config::ObjectFilter{.min_score = 0.5, .threshold = 0.7, .min_area = 100, .max_area = 100000};
  return c;
}

RegionDetection Det(const std::string& label, float score, cv::Rect box) {
  return {Detection{label, score, box}, cv::Rect(0, 0, 320, 320)};
}

std::string Types(const std::vector<TrackerEvent>& events) {
  std::string s;
  for (const auto& e : events) s += (s.empty() ? "" : ",") + std::string(EventTypeName(e.type));
  return s;
}

struct Frame {
  double t;
  std::vector<RegionDetection> detections;
  std::string events;  // expected event types, comma separated
};

void RunFrames(ObjectTracker& tracker, const std::vector<Frame>& frames, std::vector<TrackerEvent>* all = nullptr) {
  for (const Frame& f : frames) {
    auto events = tracker.Update(f.t, f.detections);
    EXPECT_EQ(Types(events), f.events) << "frame at t=" << f.t;
    if (all) all->insert(all->end(), events.begin(), events.end());
  }
}

TEST(DetectTracker, NewOnceTheMedianScoreReachesTheThreshold) {
  ObjectTracker tracker("cam", Camera(), {}, 1);
  const cv::Rect box(100, 100, 40, 80);
  std::vector<TrackerEvent> events;
  RunFrames(tracker,
            {
                {1000.0, {Det("person", 0.6f, box)}, ""},                   // median 0.6 < 0.7: false positive
                {1000.2, {Det("person", 0.8f, box + cv::Point(1, 0))}, "new"},  // median 0.7
                // top score 0.8 and a better snapshot, but nothing meaningful for an event yet (Frigate)
                {1000.4, {Det("person", 0.9f, box + cv::Point(2, 0))}, ""},
                {1000.6, {Det("person", 0.55f, box + cv::Point(3, 0))}, ""},  // median 0.7, nothing new
            },
            &events);
  ASSERT_EQ(events.size(), 1u);
  const ObjectState& after = events[0].after;
  EXPECT_TRUE(events[0].best_frame);
  EXPECT_TRUE(events[0].before.false_positive);
  EXPECT_FALSE(after.false_positive);
  EXPECT_EQ(after.camera, "cam");
  EXPECT_EQ(after.label, "person");
  EXPECT_DOUBLE_EQ(after.start_time, 1000.0);
  EXPECT_FLOAT_EQ(after.top_score, 0.7f);
  EXPECT_FLOAT_EQ(after.score, 0.8f);
  EXPECT_EQ(after.box, box + cv::Point(1, 0));
  EXPECT_TRUE(std::regex_match(after.id, std::regex(R"(1000\.000000-[a-z0-9]{6})"))) << after.id;
  ASSERT_EQ(tracker.Objects().size(), 1u);
  EXPECT_EQ(tracker.Objects()[0].id, after.id);  // stable id
  EXPECT_FLOAT_EQ(tracker.Objects()[0].top_score, 0.8f);
}

TEST(DetectTracker, UpdatesOnlyWhenSomethingMeaningfulChanged) {
  // A person standing in view at 5 fps for 30 s: Frigate publishes new, the switch to stationary, and a
  // better snapshot at most every 5 s - not 150 updates.
  ObjectTracker tracker("cam", Camera(), {}, 1);
  const cv::Rect box(50, 50, 40, 80);
  const cv::Rect bigger(50, 50, 43, 86);  // 15% larger, same place: a better snapshot, not a move
  std::vector<std::pair<double, TrackerEvent>> events;
  std::vector<int> snapshots;  // frames whose picture is the object's best so far
  for (int i = 0; i <= 150; ++i) {
    const double t = i * 0.2;
    const float score = i == 100 ? 0.97f : 0.9f;
    auto out = tracker.Update(t, {Det("person", score, i <= 100 ? box : bigger)});
    for (auto& e : out) events.emplace_back(t, e);
    if (!tracker.better_snapshots().empty()) snapshots.push_back(i);
  }
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].second.type, EventType::kNew);
  EXPECT_DOUBLE_EQ(events[0].first, 0.0);
  EXPECT_TRUE(events[0].second.best_frame);
  EXPECT_EQ(events[1].second.type, EventType::kUpdate);  // stationary after 3 s
  EXPECT_NEAR(events[1].first, 3.0, 1e-9);
  EXPECT_TRUE(events[1].second.after.stationary);
  EXPECT_FALSE(events[1].second.best_frame);
  EXPECT_NEAR(events[2].first, 20.0, 1e-9);  // score 0.97 > 0.9 + 0.05: better snapshot, 17 s since the last
  EXPECT_TRUE(events[2].second.best_frame);
  EXPECT_EQ(events[2].second.before, events[1].second.after);  // before = what the last event said
  // The larger box at 20.2 s is a better snapshot too, but only 0.2 s after an event: it waits 5 s.
  EXPECT_NEAR(events[3].first, 25.2, 1e-9);
  EXPECT_FALSE(events[3].second.best_frame) << "the snapshot was taken at 20.2 s, when it was seen";
  EXPECT_EQ(events[3].second.after.box, bigger);
  for (const auto& [t, e] : events) EXPECT_EQ(e.after.position_changes, 0) << t;
  EXPECT_EQ(snapshots, (std::vector<int>{0, 100, 101}));
}

TEST(DetectTracker, WalkingPersonUpdatesAlongItsPathNotEveryFrame) {
  // 4 px per frame at 5 fps across a 640x480 frame: the path gets a point every 5% of the diagonal
  // (40 px here), the first move counts once, and that is all that publishes.
  TrackerOptions options;
  options.frame_size = cv::Size(640, 480);
  ObjectTracker tracker("cam", Camera(), options, 1);
  int updates = 0, frames = 0;
  std::vector<double> update_times;
  for (int i = 0; i < 120; ++i, ++frames) {
    const double t = i * 0.2;
    for (const auto& e : tracker.Update(t, {Det("person", 0.9f, {10 + 4 * i, 200, 40, 80})})) {
      if (e.type == EventType::kUpdate) {
        ++updates;
        update_times.push_back(t);
        EXPECT_LE(e.after.position_changes, 1);
        EXPECT_FALSE(e.after.stationary);
      }
    }
  }
  EXPECT_GE(updates, 10) << "the walk moves ~480 px: about one path point per 40 px";
  EXPECT_LE(updates, 16) << "an update per path point, not per frame (" << frames << " frames)";
  ASSERT_GE(update_times.size(), 2u);
  EXPECT_NEAR(update_times[0], 0.2, 1e-9) << "Frigate's path takes its second point on the next frame";
}

TEST(DetectTracker, EndsAfterMaxDisappearedWithTheLastSeenTime) {
  ObjectTracker tracker("cam", Camera(), {}, 1);
  const cv::Rect box(10, 10, 40, 80);
  std::vector<TrackerEvent> events;
  RunFrames(tracker,
            {
                {10.0, {Det("person", 0.9f, box)}, "new"},
                {11.0, {}, ""},
                {12.0, {}, ""},  // 2 s unseen: not yet more than max_disappeared
                {12.5, {}, "end"},
                {13.0, {}, ""},
            },
            &events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].after.id, events[0].after.id);
  EXPECT_FALSE(events[1].after.active);
  ASSERT_TRUE(events[1].after.end_time.has_value());
  EXPECT_DOUBLE_EQ(*events[1].after.end_time, 10.0);
  EXPECT_TRUE(tracker.Objects().empty());
}

TEST(DetectTracker, FalsePositivesNeverPublishNorEnd) {
  ObjectTracker tracker("cam", Camera(), {}, 1);
  RunFrames(tracker, {
                         {1.0, {Det("person", 0.55f, {0, 0, 40, 80})}, ""},
                         {1.2, {Det("person", 0.6f, {0, 0, 40, 80})}, ""},
                         {5.0, {}, ""},
                     });
  EXPECT_TRUE(tracker.Objects().empty());
}

TEST(DetectTracker, FiltersByLabelScoreAndArea) {
  ObjectTracker tracker("cam", Camera(), {}, 1);
  struct Case {
    Detection d;
    bool accepted;
  };
  for (const Case& c : {
           Case{{"person", 0.9f, {0, 0, 40, 80}}, true},
           Case{{"dog", 0.9f, {0, 0, 40, 80}}, false},        // not tracked
           Case{{"person", 0.49f, {0, 0, 40, 80}}, false},    // below min_score
           Case{{"person", 0.9f, {0, 0, 9, 10}}, false},      // 90 px < min_area 100
           Case{{"person", 0.9f, {0, 0, 400, 400}}, false},   // 160000 > max_area
           Case{{"car", 0.5f, {0, 0, 400, 400}}, true},       // default filter for car
       }) {
    EXPECT_EQ(tracker.Accepts(c.d), c.accepted) << c.d.label << " " << c.d.score << " " << c.d.box;
  }
}

TEST(DetectTracker, TwoPeopleKeepTheirIds) {
  ObjectTracker tracker("cam", Camera(), {}, 7);
  std::vector<TrackerEvent> events;
  RunFrames(tracker,
            {
                {1.0, {Det("person", 0.9f, {0, 0, 40, 80}), Det("person", 0.9f, {200, 0, 40, 80})}, "new,new"},
                {1.2, {Det("person", 0.9f, {205, 0, 40, 80}), Det("person", 0.9f, {5, 0, 40, 80})}, ""},
            },
            &events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_NE(events[0].after.id, events[1].after.id);
  auto objects = tracker.Objects();
  ASSERT_EQ(objects.size(), 2u);
  for (const auto& o : objects) {
    const auto& first = o.id == events[0].after.id ? events[0].after : events[1].after;
    EXPECT_EQ(o.box.x - first.box.x, 5) << o.id;
  }
  EXPECT_EQ(tracker.Counts(), (std::map<std::string, int>{{"car", 0}, {"person", 2}}));
}

TEST(DetectTracker, StationaryAfterStandingStill) {
  ObjectTracker tracker("cam", Camera(), {}, 1);
  const cv::Rect box(50, 50, 40, 80);
  std::vector<TrackerEvent> events;
  RunFrames(tracker,
            {
                {0.0, {Det("person", 0.9f, box)}, "new"},
                {1.0, {Det("person", 0.9f, box)}, ""},
                {2.0, {Det("person", 0.9f, box)}, ""},
                {3.0, {Det("person", 0.9f, box)}, "update"},  // 3 s without moving
                {4.0, {Det("person", 0.9f, box + cv::Point(20, 0))}, "update"},  // moved: not stationary
            },
            &events);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(events[1].after.stationary);
  EXPECT_EQ(events[1].after.motionless_count, 3);
  EXPECT_FALSE(events[2].after.stationary);
  EXPECT_EQ(events[2].after.position_changes, 1);
  EXPECT_EQ(events[2].after.motionless_count, 0);
}

TEST(DetectTracker, ZonesCurrentAndEntered) {
  config::CameraConfig cam = Camera();
  cam.zones["porch"] = config::ZoneConfig{{{0, 100}, {100, 100}, {100, 200}, {0, 200}}, {}};
  cam.zones["cars_only"] = config::ZoneConfig{{{0, 0}, {1000, 0}, {1000, 1000}, {0, 1000}}, {"car"}};
  ObjectTracker tracker("cam", cam, {}, 1);
  std::vector<TrackerEvent> events;
  // Walking in small steps (each overlaps the last, each is a move): feet = bottom centre of the box.
  // Only the first move and the zone changes publish (no frame size: no path updates here).
  RunFrames(tracker,
            {
                {0.0, {Det("person", 0.9f, {110, 10, 40, 80})}, "new"},     // feet (130, 90): outside
                {0.5, {Det("person", 0.9f, {95, 30, 40, 80})}, "update"},   // feet (115, 110): first move
                {1.0, {Det("person", 0.9f, {80, 40, 40, 80})}, "update"},   // feet (100, 120): on the edge
                {1.5, {Det("person", 0.9f, {80, 85, 40, 80})}, ""},         // feet (100, 165): still inside
                {2.0, {Det("person", 0.9f, {80, 125, 40, 80})}, "update"},  // feet (100, 205): left it
            },
            &events);
  ASSERT_EQ(events.size(), 4u);
  using Zones = std::vector<std::string>;
  EXPECT_EQ(events[1].after.current_zones, Zones{});
  EXPECT_EQ(events[1].after.position_changes, 1);
  EXPECT_EQ(events[2].after.current_zones, Zones{"porch"});  // cars_only ignores people
  EXPECT_EQ(events[2].after.entered_zones, Zones{"porch"});
  EXPECT_EQ(tracker.Objects()[0].current_zones, Zones{});
  EXPECT_EQ(events[3].after.current_zones, Zones{});
  EXPECT_EQ(events[3].after.entered_zones, Zones{"porch"});
  EXPECT_EQ(events[3].after.position_changes, 1) << "walking on is not a new position change (Frigate)";
}

TEST(DetectTracker, EndAllEndsPublishedObjects) {
  ObjectTracker tracker("cam", Camera(), {}, 1);
  RunFrames(tracker, {{1.0, {Det("person", 0.9f, {0, 0, 40, 80}), Det("car", 0.6f, {300, 0, 80, 40})}, "new"}});
  auto ends = tracker.EndAll();
  ASSERT_EQ(ends.size(), 1u);  // the car (0.6 < 0.7) was never a true positive
  EXPECT_EQ(ends[0].type, EventType::kEnd);
  EXPECT_EQ(ends[0].after.label, "person");
  EXPECT_TRUE(tracker.Objects().empty());
}

TEST(DetectTracker, SameSeedSameIds) {
  ObjectTracker a("cam", Camera(), {}, 42), b("cam", Camera(), {}, 42);
  auto ea = a.Update(5.5, {Det("person", 0.9f, {0, 0, 40, 80})});
  auto eb = b.Update(5.5, {Det("person", 0.9f, {0, 0, 40, 80})});
  ASSERT_EQ(ea.size(), 1u);
  ASSERT_EQ(eb.size(), 1u);
  EXPECT_EQ(ea[0].after.id, eb[0].after.id);
}

}  // namespace
}  // namespace edged::detect
