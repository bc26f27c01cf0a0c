"""Benchmark: the keyboard detector on real far-side webcam videos (AI-Pianist).

    PYTHONPATH=. python benchmarks/bench_keyboard_real.py /work/.mirror/ppfish45+AI-Pianist/repo

Source (fetched, never committed): github:ppfish45/AI-Pianist, the test set
``DataSet/TestSet/V{1,2,3,5,6,7,8,9,10}.wmv`` at commit
a183028ce818e0434d25706f3b60bbc17d0df5c8 (640x360 webcam videos of an 88-key
digital piano seen from the far side, some tilted). The hand labels are
``benchmarks/labels/ai_pianist_keyboards.json`` (how they were made is in the
file). For each video the script runs ``copdata detect-keyboard``'s detector
(:func:`copdata.qa.detect.detect_keyboard_in_video`, 7 frames) and prints the
tilt, the side, the key range and the IoU of the detected keyboard quad with
the labelled one, both clipped to the frame (IoU of the boxes after the view
is turned upright). Goal: IoU >= 0.9 on every video.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from copdata.qa.detect import detect_keyboard_in_video
from copdata.qa.orient import quad_iou

COMMIT = "a183028ce818e0434d25706f3b60bbc17d0df5c8"
LABELS = Path(__file__).with_name("labels") / "ai_pianist_keyboards.json"


def clip_to_frame(quad, size):
    """A quad clipped to the frame rectangle (Sutherland-Hodgman)."""
    w, h = size
    poly = [tuple(map(float, p)) for p in quad]
    for axis, limit, keep_below in ((0, 0.0, False), (0, float(w), True), (1, 0.0, False), (1, float(h), True)):
        out = []
        for i, cur in enumerate(poly):
            prev = poly[i - 1]
            inside = (lambda p: p[axis] <= limit) if keep_below else (lambda p: p[axis] >= limit)
            if inside(cur):
                if not inside(prev):
                    out.append(_cross(prev, cur, axis, limit))
                out.append(cur)
            elif inside(prev):
                out.append(_cross(prev, cur, axis, limit))
        poly = out
    return poly


def _cross(a, b, axis, limit):
    t = (limit - a[axis]) / (b[axis] - a[axis])
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("repo", help="git directory of the fetched github:ppfish45/AI-Pianist snapshot")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    labels = json.loads(LABELS.read_text())
    size = tuple(labels["frame_size"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, label in labels["videos"].items():
            video = Path(tmp) / f"{name}.wmv"
            video.write_bytes(subprocess.run(
                ["git", "--git-dir", args.repo, "show", f"{COMMIT}:DataSet/TestSet/{name}.wmv"],
                check=True, capture_output=True).stdout)
            started = time.perf_counter()
            found, _ = detect_keyboard_in_video(video)
            seconds = time.perf_counter() - started
            score = 0.0
            if found.box is not None:
                score = quad_iou(clip_to_frame(found.quad, size), clip_to_frame(label["quad"], size))
            rows.append({"video": name, "iou": round(score, 3), "confidence": found.confidence,
                         "angle_deg": found.angle_deg, "flipped": found.flipped,
                         "keys_visible": found.keys_visible, "lowest": found.lowest_name,
                         "highest": found.highest_name, "partial": found.partial,
                         "seconds": round(seconds, 2)})
    print(f"{'video':>6} {'IoU':>6} {'conf':>6} {'tilt':>6} {'far side':>8} {'keys':>5} "
          f"{'range':>8} {'s':>5}")
    for r in rows:
        print(f"{r['video']:>6} {r['iou']:>6.3f} {r['confidence']:>6.3f} {r['angle_deg']:>+6.1f} "
              f"{str(r['flipped']):>8} {r['keys_visible']:>5} {str(r['lowest']) + '-' + str(r['highest']):>8} "
              f"{r['seconds']:>5.2f}")
    ious = np.array([r["iou"] for r in rows])
    print(f"IoU min {ious.min():.3f} median {np.median(ious):.3f}; "
          f"{int((ious >= 0.9).sum())} of {len(ious)} >= 0.9; "
          f"far side found on {sum(r['flipped'] for r in rows)} of {len(rows)}")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
