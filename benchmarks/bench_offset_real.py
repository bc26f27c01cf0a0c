"""Benchmark: audio-to-video offset on real far-side webcam videos (AI-Pianist).

    PYTHONPATH=. python benchmarks/bench_offset_real.py /work/.mirror/ppfish45+AI-Pianist/repo

Source (fetched, never committed): github:ppfish45/AI-Pianist at commit
a183028ce818e0434d25706f3b60bbc17d0df5c8, ``DataSet/TestSet/V{1,2,3,5,6,7,8,9,10}.wmv``
(640x360, 20 fps, 29-61 s, no audio) with ``V*.wmv.mid``, the instrument's
MIDI aligned to the video's start (its note numbers are one octave low: +12
here). The MIDI's note-ons stand for the audio: they are shifted by a known
offset ``d`` (positive: audio late) in [-0.5, 0.5] s, so the truth is ``d``;
they are not rendered and transcribed (that adds the transcriber's timing
error, not measured here).

For each video the keyboard is found and turned upright
(:func:`copdata.qa.detect.detect_keyboard_in_video`,
:func:`copdata.qa.orient.strip_matrix`), frames are read on the 25 fps grid
(frame ``i`` shows time ``i / 25``), and every 10 s clip gives the build's
per-clip estimate (:func:`copdata.qa.offset.estimate_offset`) and curve;
:func:`copdata.qa.offset.source_offset` gives the one estimate per source.

Prints per video and offset: the per-clip estimates acted on today
(confidence >= 0.05) and how many were within one frame, and the source
estimate, its error in frames, bootstrap half-width, second peak, agreement
and whether it is confident. The median error at ``d = 0`` over the videos is
the systematic lag of the motion behind the sound on real video (the key
travels before the hammer strikes; a camera frame is a snapshot); it is
printed, not subtracted.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from copdata.media.decode import iter_frames
from copdata.notes import Note
from copdata.qa import offset as qa_offset
from copdata.qa.detect import detect_keyboard_in_video
from copdata.qa.orient import strip_matrix
from copdata.qa.stage import MIN_OFFSET_CONFIDENCE

COMMIT = "a183028ce818e0434d25706f3b60bbc17d0df5c8"
VIDEOS = ("V1", "V2", "V3", "V5", "V6", "V7", "V8", "V9", "V10")
FPS = 25.0
CLIP_S = 10.0
OFFSETS = (-0.5, -0.31, -0.12, 0.0, 0.08, 0.24, 0.45)


def load_notes(path: Path) -> list[Note]:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(path))
    notes = [Note(float(n.start), float(n.end), int(n.pitch) + 12, int(n.velocity))
             for inst in midi.instruments for n in inst.notes]
    return [n for n in notes if 21 <= n.pitch <= 108]


def video_motion(video: Path) -> np.ndarray:
    found, _ = detect_keyboard_in_video(video)
    if found.box is None:
        raise SystemExit(f"{video.name}: no keyboard found")
    warp = None
    crop = found.box
    if not found.upright:
        matrix, w, h = strip_matrix(found.frame_size, found.rotation_deg, found.strip_box, found.mirrored)
        warp, crop = (matrix, (w, h)), None
    frames = iter_frames(video, FPS, crop=crop, warp=warp)
    return qa_offset.motion_signal(frames, qa_offset.DEFAULT_BANDS)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("repo", help="git directory of the fetched github:ppfish45/AI-Pianist snapshot")
    args = p.parse_args(argv)
    max_lag = int(math.ceil(qa_offset.DEFAULT_MAX_OFFSET_S * FPS))
    n = int(CLIP_S * FPS)
    rows, wrong_conf = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in VIDEOS:
            for suffix in (".wmv", ".wmv.mid"):
                (Path(tmp) / f"{name}{suffix}").write_bytes(subprocess.run(
                    ["git", "--git-dir", args.repo, "show", f"{COMMIT}:DataSet/TestSet/{name}{suffix}"],
                    check=True, capture_output=True).stdout)
            motion = video_motion(Path(tmp) / f"{name}.wmv")
            notes = load_notes(Path(tmp) / f"{name}.wmv.mid")
            clips = motion.shape[0] // n
            for d in OFFSETS:
                heard = [Note(x.start + d, x.end + d, x.pitch, x.velocity) for x in notes]
                curves, acted, acted_ok = [], 0, 0
                for c in range(clips):
                    m = motion[c * n:(c + 1) * n]
                    onsets = qa_offset.note_onset_signal(heard, FPS, c * n - max_lag, n + 2 * max_lag,
                                                         qa_offset.DEFAULT_BANDS)
                    off, conf = qa_offset.estimate_offset(m, onsets, FPS)
                    if conf >= MIN_OFFSET_CONFIDENCE:
                        acted += 1
                        acted_ok += abs(off - d) <= 1 / FPS
                    if abs(off - d) > 1 / FPS:
                        wrong_conf.append(conf)
                    curves.append(qa_offset.offset_curve(m, onsets, max_lag))
                src = qa_offset.source_offset(curves, FPS, len(notes))
                rows.append({"video": name, "seconds": round(motion.shape[0] / FPS, 1), "d": d,
                             "clips": clips, "acted": acted, "acted_ok": acted_ok,
                             "error_frames": round((src["offset_s"] - d) * FPS, 2), **src})
                print(f"{name:>4} {rows[-1]['seconds']:>5.1f}s d={d:+.2f}  per clip: {acted}/{clips} "
                      f"acted on, {acted_ok} within 1 frame | source {src['offset_s']:+.3f} s "
                      f"(error {rows[-1]['error_frames']:+.2f} frames, +-{src['half_width_s']} s, "
                      f"2nd {src['second_peak']}, agree {src['agree']:.2f}) "
                      f"{'CONFIDENT' if src['confident'] else '-'}", flush=True)
    err0 = [r["error_frames"] for r in rows if r["d"] == 0.0]
    print(f"\nlag of motion behind sound at d=0: median {np.median(err0):+.2f} frames "
          f"(per video: {', '.join(f'{e:+.1f}' for e in err0)})")
    acted = sum(r["acted"] for r in rows)
    print(f"per clip (today's rule, confidence >= {MIN_OFFSET_CONFIDENCE}): {acted} of "
          f"{sum(r['clips'] for r in rows)} clips acted on, {sum(r['acted_ok'] for r in rows)} "
          f"of them within 1 frame; the most confident wrong clip estimate: {max(wrong_conf):.3f}")
    conf = [r for r in rows if r["confident"]]
    ok = [r for r in conf if abs(r["error_frames"]) <= 1.0]
    print(f"per source: {len(conf)} of {len(rows)} confident, {len(ok)} of them within 1 frame; "
          f"sources >= 60 s confident: {sum(r['confident'] for r in rows if r['seconds'] >= 60)} of "
          f"{sum(r['seconds'] >= 60 for r in rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
