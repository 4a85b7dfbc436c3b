// Regions: Frigate's calculate_region / get_cluster_candidates / detect-loop arithmetic, with values
// worked out by hand from frigate/util/object.py and frigate/util/image.py.
#include <random>

#include <gtest/gtest.h>

#include "detect/regions/regions.h"

namespace edged::detect::regions {
namespace {

const cv::Size kFrame(768, 576);

cv::Rect Box(int x1, int y1, int x2, int y2) { return {x1, y1, x2 - x1, y2 - y1}; }

TEST(DetectRegions, MinRegionSize) {
  EXPECT_EQ(MinRegionSize(300, 300), 300);
  EXPECT_EQ(MinRegionSize(318, 200), 320);
  EXPECT_EQ(MinRegionSize(301, 200), 304);
  EXPECT_EQ(MinRegionSize(320, 320), 320);
  EXPECT_EQ(MinRegionSize(640, 640), 320);
}

TEST(DetectRegions, CalculateRegion) {
  // Small box near the corner: min size, shifted into the frame.
  EXPECT_EQ(CalculateRegion(kFrame, Box(100, 100, 150, 200), 320), cv::Rect(0, 0, 320, 320));
  EXPECT_EQ(CalculateRegion(kFrame, Box(700, 500, 760, 570), 320), cv::Rect(448, 256, 320, 320));
  // Centred: box 40x80 at (300,200), multiplier 2 -> 160 -> min 320; x = int(20+300-160) = 160.
  EXPECT_EQ(CalculateRegion(kFrame, Box(300, 200, 340, 280), 320), cv::Rect(160, 80, 320, 320));
  // Size floored to a multiple of 4: 101 * 1.35 = 136.35 -> 136.
  EXPECT_EQ(CalculateRegion(kFrame, Box(200, 200, 301, 250), 100, 1.35).width, 136);
  // Larger than the frame: Frigate keeps the size and starts at 0 (the detector pads).
  EXPECT_EQ(CalculateRegion(kFrame, Box(100, 100, 500, 400), 320), cv::Rect(0, 0, 800, 800));
}

TEST(DetectRegions, RegionsAreSquareMultiplesOfFourInsideTheFrame) {
  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) {
    const int x1 = static_cast<int>(rng() % 760), y1 = static_cast<int>(rng() % 570);
    const int x2 = x1 + 1 + static_cast<int>(rng() % (768 - x1)), y2 = y1 + 1 + static_cast<int>(rng() % (576 - y1));
    const cv::Rect r = CalculateRegion(kFrame, Box(x1, y1, x2, y2), 320, i % 2 ? 2.0 : 1.35);
    ASSERT_EQ(r.width, r.height);
    ASSERT_EQ(r.width % 4, 0);
    ASSERT_GE(r.width, 320);
    ASSERT_GE(r.x, 0);
    ASSERT_GE(r.y, 0);
    if (r.width <= kFrame.height) {  // fits: the region lies in the frame and holds the box's centre
      ASSERT_LE(r.x + r.width, kFrame.width);
      ASSERT_LE(r.y + r.height, kFrame.height);
      ASSERT_TRUE(r.contains(cv::Point((x1 + x2) / 2, (y1 + y2) / 2)));
    }
  }
}

TEST(DetectRegions, ClustersNearbyBoxes) {
  const std::vector<cv::Rect> boxes = {Box(100, 100, 140, 180), Box(150, 110, 190, 190), Box(600, 400, 640, 480)};
  auto clusters = ClusterCandidates(kFrame, 320, boxes);
  ASSERT_EQ(clusters.size(), 2u);
  EXPECT_EQ(clusters[0], (std::vector<int>{0, 1}));
  EXPECT_EQ(clusters[1], (std::vector<int>{2}));
  // Union (100,100)-(190,190): 90 * 1.35 -> 120 -> min 320, shifted to x = int(45+100-160) < 0 -> 0.
  EXPECT_EQ(ClusterRegion(kFrame, 320, clusters[0], boxes), cv::Rect(0, 0, 320, 320));
}

TEST(DetectRegions, TinyBoxDoesNotJoinABigRegion) {
  // Joining would grow the region to 436 px, where the 4x4 box is under 5% of the area.
  const std::vector<cv::Rect> boxes = {Box(100, 100, 400, 400), Box(420, 100, 424, 104)};
  auto clusters = ClusterCandidates(kFrame, 320, boxes);
  ASSERT_EQ(clusters.size(), 2u);
  EXPECT_EQ(clusters[0], (std::vector<int>{0}));
  EXPECT_EQ(clusters[1], (std::vector<int>{1}));
}

TEST(DetectRegions, OverlapAndInside) {
  EXPECT_TRUE(BoxOverlaps(Box(0, 0, 10, 10), Box(10, 10, 20, 20)));  // touching counts
  EXPECT_FALSE(BoxOverlaps(Box(0, 0, 10, 10), Box(11, 0, 20, 10)));
  EXPECT_TRUE(BoxInside(Box(0, 0, 10, 10), Box(0, 0, 10, 10)));
  EXPECT_FALSE(BoxInside(Box(0, 0, 10, 10), Box(5, 5, 11, 9)));
  const std::vector<cv::Rect> regions = {Box(0, 0, 320, 320)};
  EXPECT_TRUE(InsideAny(Box(10, 10, 50, 50), regions));
  EXPECT_FALSE(InsideAny(Box(300, 10, 350, 50), regions));
  EXPECT_TRUE(IntersectsAny(Box(300, 10, 350, 50), regions));
}

TEST(DetectRegions, FrameRegionsFollowObjectsAndMotion) {
  const std::vector<cv::Rect> objects = {Box(300, 200, 340, 280)};
  const std::vector<cv::Rect> motion = {Box(310, 210, 330, 260),   // inside the object's region
                                        Box(650, 20, 700, 90)};    // elsewhere
  auto regions = FrameRegions(kFrame, 320, objects, motion, /*motion_calibrating=*/false);
  ASSERT_EQ(regions.size(), 2u);
  // Object region: 40x80 box, multiplier 1.35 -> 108 -> min 320, centred at (320, 240).
  EXPECT_EQ(regions[0], cv::Rect(160, 80, 320, 320));
  EXPECT_EQ(regions[1], CalculateRegion(kFrame, motion[1], 320, 2.0));
  EXPECT_EQ(regions[1], cv::Rect(448, 0, 320, 320));
  // While motion calibrates only tracked objects get regions; no motion, no objects: nothing to run.
  EXPECT_EQ(FrameRegions(kFrame, 320, objects, motion, true).size(), 1u);
  EXPECT_TRUE(FrameRegions(kFrame, 320, {}, {}, false).empty());
}

}  // namespace
}  // namespace edged::detect::regions
