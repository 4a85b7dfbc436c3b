// Regions: the square crops object detection runs on, placed around motion and tracked objects the way
// Frigate does (frigate/util/object.py, frigate/util/image.py calculate_region, frigate/video/detect.py),
// so detection cost follows what moves instead of the whole frame. Pure functions, no state.
// Boxes are cv::Rect{x1, y1, x2 - x1, y2 - y1} with Frigate's (x1, y1, x2, y2) corners.
#pragma once

#include <span>
#include <vector>

#include <opencv2/core.hpp>

namespace edged::detect::regions {

// The smallest region for a detector input of model_width x model_height: the larger side rounded up
// to a multiple of 4, at most 320 (bigger models still start from 320 px regions and upscale).
int MinRegionSize(int model_width, int model_height);

// A square of side max(w, h) * multiplier (floored to a multiple of 4, at least min_size) centred on
// the box and shifted inside the frame (Frigate's calculate_region). Coordinates may be fractional.
cv::Rect CalculateRegion(cv::Size frame, double x1, double y1, double x2, double y2, int min_size,
                         double multiplier = 2.0);
inline cv::Rect CalculateRegion(cv::Size frame, const cv::Rect& box, int min_size, double multiplier = 2.0) {
  return CalculateRegion(frame, box.x, box.y, box.x + box.width, box.y + box.height, min_size, multiplier);
}

// Groups boxes that fit one region: each cluster starts at the first unused box and takes every later
// box inside its boundary unless a box would cover under 5% of the grown region. Returns the clusters
// as sorted index lists, in ascending order of their first index.
std::vector<std::vector<int>> ClusterCandidates(cv::Size frame, int min_region, std::span<const cv::Rect> boxes);

// The region around the union of the cluster's boxes (multiplier 1.35 for tracked objects, 2 for motion).
cv::Rect ClusterRegion(cv::Size frame, int min_region, std::span<const int> cluster, std::span<const cv::Rect> boxes,
                       double multiplier = 1.35);

bool BoxOverlaps(const cv::Rect& a, const cv::Rect& b);  // touching edges count, as in Frigate
double Iou(const cv::Rect& a, const cv::Rect& b);        // intersection over union, 0 for empty boxes
bool BoxInside(const cv::Rect& outer, const cv::Rect& inner);
bool IntersectsAny(const cv::Rect& box, std::span<const cv::Rect> others);
bool InsideAny(const cv::Rect& box, std::span<const cv::Rect> regions);

// One frame's regions, as Frigate's detect loop builds them: clustered regions around the tracked
// (non-stationary) object boxes, then, unless motion is calibrating, clustered regions (multiplier 2)
// around the motion boxes that lie inside none of those.
std::vector<cv::Rect> FrameRegions(cv::Size frame, int min_region, std::span<const cv::Rect> object_boxes,
                                   std::span<const cv::Rect> motion_boxes, bool motion_calibrating);

}  // namespace edged::detect::regions
