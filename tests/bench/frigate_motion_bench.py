#!/usr/bin/env python3
"""Frigate's own ImprovedMotionDetector and edged's MotionDetector side by side on the same frames.

Frigate's code is not part of this repository: improved_motion.py is read at run time from
$FRIGATE_IMPROVED_MOTION (a file) or from the Frigate git mirror ($FRIGATE_REPO, a bare repo; default
/work/.mirror/blakeblackshear+frigate/repo). The frigate.* modules it imports are replaced by small
stand-ins; only the detector class runs. Needs python3-opencv, python3-numpy, python3-scipy.

  frigate_motion_bench.py <motion_boxes binary> [video] [frames]
"""
import json
import os
import subprocess
import sys
import time
import types


def load_frigate_source():
    path = os.environ.get("FRIGATE_IMPROVED_MOTION")
    if path:
        return open(path).read() if os.path.exists(path) else None
    repo = os.environ.get("FRIGATE_REPO", "/work/.mirror/blakeblackshear+frigate/repo")
    try:
        return subprocess.run(["git", "-C", repo, "show", "HEAD:frigate/motion/improved_motion.py"],
                              check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    edged_bin = sys.argv[1]
    video = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(__file__), "../../../shared/data/video/vtest.avi")
    frames_wanted = int(sys.argv[3]) if len(sys.argv) > 3 else 795
    try:
        import cv2
        import numpy as np
        import scipy  # noqa: F401  (improved_motion.py imports scipy.ndimage)
    except ImportError as e:
        print(f"SKIP: {e}; apt-get install python3-opencv python3-numpy python3-scipy")
        return 0
    source = load_frigate_source()
    if source is None:
        print("SKIP: Frigate's improved_motion.py not found; set FRIGATE_IMPROVED_MOTION or FRIGATE_REPO")
        return 0

    # Stand-ins for the frigate modules improved_motion.py imports.
    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    class MotionDetector:  # the abstract base
        pass

    def grab_cv2_contours(cnts):
        return cnts[0] if len(cnts) == 2 else cnts[1]

    module("frigate")
    module("frigate.camera", PTZMetrics=object)
    module("frigate.config")
    module("frigate.config.config", RuntimeMotionConfig=object)
    module("frigate.motion", MotionDetector=MotionDetector)
    module("frigate.util")
    module("frigate.util.image", grab_cv2_contours=grab_cv2_contours)
    namespace = {"__name__": "frigate_improved_motion"}
    exec(compile(source, "improved_motion.py", "exec"), namespace)

    cap = cv2.VideoCapture(video, cv2.CAP_FFMPEG)
    frames = []
    while len(frames) < frames_wanted:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420))  # Frigate feeds yuv420p, reads the Y rows
    if not frames:
        print(f"cannot read {video}")
        return 1
    h, w = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
    config = types.SimpleNamespace(enabled=True, threshold=30, lightning_threshold=0.8, skip_motion_threshold=None,
                                   improve_contrast=True, contour_area=10, frame_alpha=0.01, frame_height=100,
                                   rasterized_mask=np.full((h, w), 255, np.uint8))
    detector = namespace["ImprovedMotionDetector"]((h, w), config, fps=5)
    frigate_boxes = []
    start = time.perf_counter()
    for f in frames:
        frigate_boxes.append(detector.detect(f))
    frigate_us = (time.perf_counter() - start) / len(frames) * 1e6

    out = subprocess.run([edged_bin, video, str(len(frames))], check=True, capture_output=True, text=True).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    edged_us = lines[-1]["us_per_frame"]
    same = lightning = 0
    for fb, e in zip(frigate_boxes, lines[:-1]):
        if e["lightning"]:  # edged drops a lightning frame's boxes; Frigate returns them and ignores them later
            lightning += 1
            same += 1 if not e["boxes"] else 0
            continue
        same += 1 if [list(b) for b in fb] == e["boxes"] else 0
    n = len(frames)
    print(json.dumps({"frames": n, "frigate_us_per_frame": round(frigate_us, 1), "edged_us_per_frame": edged_us,
                      "speedup": round(frigate_us / edged_us, 1), "identical_frames": same,
                      "lightning_frames": lightning,
                      "boxes_per_frame": round(sum(len(b) for b in frigate_boxes) / n, 2)}))
    return 0 if same == n else 1


if __name__ == "__main__":
    sys.exit(main())
