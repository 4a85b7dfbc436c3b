// Frigate's region arithmetic, transcribed with its integer truncations (Python int() of floats
// truncates toward zero; // floors).
#include "detect/regions/regions.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace edged::detect::regions {

namespace {

struct Corners {
  double x1, y1, x2, y2;
};
Corners Of(const cv::Rect& r) { return {double(r.x), double(r.y), double(r.x + r.width), double(r.y + r.height)}; }
double Area(const cv::Rect& r) { return double(r.width) * r.height; }

// get_cluster_boundary: how far a cluster may reach around `box` (the box is ~10% of its region).
Corners ClusterBoundary(const cv::Rect& box, int min_region) {
  const double w = box.width, h = box.height;
  const double max_area = std::abs(w * h) / 0.1;
  const int max_size = std::max(min_region, static_cast<int>(std::sqrt(max_area)));
  const double cx = w / 2 + box.x, cy = h / 2 + box.y;
  const int dx = static_cast<int>(max_size - w / 2 * 1.1);
  const int dy = static_cast<int>(max_size - h / 2 * 1.1);
  return {double(static_cast<int>(cx - dx)), double(static_cast<int>(cy - dy)), double(static_cast<int>(cx + dx)),
          double(static_cast<int>(cy + dy))};
}

bool Inside(const Corners& outer, const cv::Rect& inner) {
  const Corners b = Of(inner);
  return b.x1 >= outer.x1 && b.y1 >= outer.y1 && b.x2 <= outer.x2 && b.y2 <= outer.y2;
}

}  // namespace

int MinRegionSize(int model_width, int model_height) {
  const int largest = std::max(model_width, model_height);
  if (largest < 320) return largest % 4 == 0 ? largest : (largest + 3) / 4 * 4;
  return 320;
}

cv::Rect CalculateRegion(cv::Size frame, double x1, double y1, double x2, double y2, int min_size,
                         double multiplier) {
  int size = static_cast<int>(std::floor(std::max(x2 - x1, y2 - y1) * multiplier / 4) * 4);
  if (size < min_size) size = min_size;
  int x = static_cast<int>((x2 - x1) / 2.0 + x1 - size / 2.0);
  if (x < 0) {
    x = 0;
  } else if (x > frame.width - size) {
    x = std::max(0, frame.width - size);
  }
  int y = static_cast<int>((y2 - y1) / 2.0 + y1 - size / 2.0);
  if (y < 0) {
    y = 0;
  } else if (y > frame.height - size) {
    y = std::max(0, frame.height - size);
  }
  return {x, y, size, size};
}

bool BoxOverlaps(const cv::Rect& a, const cv::Rect& b) {
  const Corners p = Of(a), q = Of(b);
  return !(p.x2 < q.x1 || p.x1 > q.x2 || p.y1 > q.y2 || p.y2 < q.y1);
}

bool BoxInside(const cv::Rect& outer, const cv::Rect& inner) { return Inside(Of(outer), inner); }

double Iou(const cv::Rect& a, const cv::Rect& b) {
  const double inter = (a & b).area();
  const double uni = static_cast<double>(a.area()) + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

bool IntersectsAny(const cv::Rect& box, std::span<const cv::Rect> others) {
  return std::any_of(others.begin(), others.end(), [&](const cv::Rect& o) { return BoxOverlaps(box, o); });
}

bool InsideAny(const cv::Rect& box, std::span<const cv::Rect> regions) {
  return std::any_of(regions.begin(), regions.end(), [&](const cv::Rect& r) { return BoxInside(r, box); });
}

cv::Rect ClusterRegion(cv::Size frame, int min_region, std::span<const int> cluster, std::span<const cv::Rect> boxes,
                       double multiplier) {
  double x1 = frame.width, y1 = frame.height, x2 = 0, y2 = 0;
  for (int i : cluster) {
    const Corners b = Of(boxes[static_cast<size_t>(i)]);
    x1 = std::min(x1, b.x1);
    y1 = std::min(y1, b.y1);
    x2 = std::max(x2, b.x2);
    y2 = std::max(y2, b.y2);
  }
  return CalculateRegion(frame, x1, y1, x2, y2, min_region, multiplier);
}

std::vector<std::vector<int>> ClusterCandidates(cv::Size frame, int min_region, std::span<const cv::Rect> boxes) {
  std::vector<bool> used(boxes.size(), false);
  std::set<std::vector<int>> unique;
  for (size_t i = 0; i < boxes.size(); ++i) {
    if (used[i]) continue;
    std::vector<int> cluster = {static_cast<int>(i)};
    used[i] = true;
    const Corners boundary = ClusterBoundary(boxes[i], min_region);
    for (size_t j = 0; j < boxes.size(); ++j) {
      if (used[j] || !Inside(boundary, boxes[j])) continue;
      std::vector<int> potential = cluster;
      potential.push_back(static_cast<int>(j));
      const cv::Rect region = ClusterRegion(frame, min_region, potential, boxes);
      bool join = true;
      if (region.width > min_region) {
        // Every box should keep more than 5% of the region's area, or it would be too small to find.
        for (int b : potential) {
          if (Area(boxes[static_cast<size_t>(b)]) / Area(region) < 0.05) {
            join = false;
            break;
          }
        }
      }
      if (join) {
        cluster.push_back(static_cast<int>(j));
        used[j] = true;
      }
    }
    std::sort(cluster.begin(), cluster.end());
    unique.insert(std::move(cluster));
  }
  return {unique.begin(), unique.end()};
}

std::vector<cv::Rect> FrameRegions(cv::Size frame, int min_region, std::span<const cv::Rect> object_boxes,
                                   std::span<const cv::Rect> motion_boxes, bool motion_calibrating) {
  std::vector<cv::Rect> out;
  for (const auto& c : ClusterCandidates(frame, min_region, object_boxes)) {
    out.push_back(ClusterRegion(frame, min_region, c, object_boxes, 1.35));
  }
  if (motion_calibrating) return out;
  std::vector<cv::Rect> standalone;
  for (const auto& b : motion_boxes) {
    if (!InsideAny(b, out)) standalone.push_back(b);
  }
  for (const auto& c : ClusterCandidates(frame, min_region, standalone)) {
    out.push_back(ClusterRegion(frame, min_region, c, standalone, 2.0));
  }
  return out;
}

}  // namespace edged::detect::regions
