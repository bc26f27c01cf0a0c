"""QA signals against known answers: piano_score ROC AUC, offset errors, box IoUs.

    .venv/bin/python benchmarks/bench_qa.py [--clips 12] [--seconds 10]

* piano_score: positives are solo piano (copdata's additive piano rendering
  procedural performances); negatives are speech-like sound (numpy), real
  synthetic speech from ``espeak-ng`` when that program is installed
  (``apt-get install -y espeak-ng``), white/pink/brown noise and rustle, drum
  patterns, and mixtures (piano + speech at 0 dB, piano + drums at 0 dB). Every
  clip's notes are its basic-pitch transcription, as in a build. Prints the
  ROC AUC overall and per negative class, and the scores.
* av_offset_s: rendered keyboard videos of procedural performances, notes of
  the transcribed audio delayed by offsets in [-0.5, 0.5] s; prints the error
  in video frames (goal <= 1) and the share of clips within one frame.
* keyboard box: rendered keyboards in cluttered frames with hands at several
  positions and scales, and at the PianoYT-2h box geometry of
  ``manifests/pianoyt2h.csv`` on 1920x1080 frames; prints the IoUs (goal >= 0.9).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from copdata.notes import Note  # noqa: E402
from copdata.qa import synthetic  # noqa: E402
from copdata.qa.audio import piano_score  # noqa: E402
from copdata.qa.keyboard import detect_keyboard, iou  # noqa: E402
from copdata.qa.offset import av_offset  # noqa: E402
from copdata.render.keyboard import KeyboardRenderer  # noqa: E402
from copdata.render.performance import generate_performance  # noqa: E402
from copdata.render.piano import render_notes  # noqa: E402
from copdata.transcription import get_transcriber  # noqa: E402

SR = 22050
FPS = 25.0
SENTENCES = [
    "Welcome back to my channel, today I will play a piece that I have loved since I was a child.",
    "Please like and subscribe, and leave a comment below telling me what you want to hear next.",
    "This recording was made in our living room with a single microphone, so forgive the noise.",
    "Thank you all so much for coming tonight, the next piece is a nocturne by Chopin.",
]


def espeak(text: str, seconds: float, seed: int) -> np.ndarray | None:
    """espeak-ng speech (repeated to ``seconds``) at 22050 Hz, or None."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    import soundfile

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        voice = ["en", "en-us", "en+f3", "en+m3"][seed % 4]
        subprocess.run([exe, "-v", voice, "-s", str(150 + 10 * (seed % 3)), "-w", str(wav), text],
                       check=True, capture_output=True)
        audio, rate = soundfile.read(wav, dtype="float32")
    import soxr

    audio = soxr.resample(audio, rate, SR)
    n = int(seconds * SR)
    reps = int(np.ceil(n / len(audio)))
    return np.tile(audio, reps)[:n].astype(np.float32)


def roc_auc_score(labels: list[int], scores: list[float]) -> float:
    """ROC AUC as the Mann-Whitney probability that a positive outscores a
    negative (ties count one half); equals scikit-learn's roc_auc_score."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def piano_auc(clips: int, seconds: float) -> None:
    transcriber = get_transcriber()
    scored: dict[str, list[float]] = {}

    def add(kind: str, audio: np.ndarray) -> None:
        scored.setdefault(kind, []).append(piano_score(audio, SR, transcriber.transcribe(audio, SR)))

    started = time.perf_counter()
    for k in range(clips):
        notes, _ = generate_performance(100 + k, seconds)
        piano = render_notes(notes, SR, seconds)
        add("solo piano", piano)
        speech = synthetic.speech_like(seconds, SR, seed=k)
        add("speech (numpy)", speech)
        spoken = espeak(SENTENCES[k % len(SENTENCES)], seconds, k)
        if spoken is not None:
            add("speech (espeak-ng)", spoken)
        add("noise", synthetic.noise(seconds, SR, ["white", "pink", "brown", "rustle"][k % 4], seed=k))
        add("drums", synthetic.drums(seconds, SR, bpm=90 + 7 * k, seed=k))
        add("piano + speech 0 dB", synthetic.mix(piano, spoken if spoken is not None else speech, 0.0))
        add("piano + drums 0 dB", synthetic.mix(piano, synthetic.drums(seconds, SR, seed=k + 50), 0.0))
    positives = scored["solo piano"]
    print(f"piano_score on {clips} clips of {seconds:g} s per class "
          f"({time.perf_counter() - started:.0f} s)")
    for kind, scores in scored.items():
        print(f"  {kind:22s} median {np.median(scores):.3f}  min {np.min(scores):.3f}  "
              f"max {np.max(scores):.3f}")
    negatives = [s for kind, ss in scored.items() if kind != "solo piano" for s in ss]
    labels = [1] * len(positives) + [0] * len(negatives)
    print(f"ROC AUC solo piano vs all negatives: {roc_auc_score(labels, positives + negatives):.4f}")
    for kind, scores in scored.items():
        if kind != "solo piano":
            auc = roc_auc_score([1] * len(positives) + [0] * len(scores), positives + scores)
            print(f"  vs {kind:22s} AUC {auc:.4f}")


def offsets(clips: int) -> None:
    transcriber = get_transcriber()
    errors, confident = [], []
    for k in range(clips):
        notes, _ = generate_performance(200 + k, 12.0)
        audio = render_notes(notes, SR, 12.0)
        frames = list(KeyboardRenderer(520, 80).frames(notes, FPS, int(12 * FPS)))
        for offset in (-0.5, -0.25, -0.1, 0.0, 0.1, 0.25, 0.5):
            heard = transcriber.transcribe(synthetic.delay(audio, offset, SR), SR)
            measured, confidence = av_offset(frames[25:275], heard, FPS, t0=1.0)
            errors.append(abs(measured - offset) * FPS)
            confident.append(confidence)
    errors, confident = np.asarray(errors), np.asarray(confident)
    print(f"av_offset_s on {len(errors)} clips (10 s, {clips} performances x 7 offsets in "
          f"[-0.5, 0.5] s, transcribed notes): error in frames median {np.median(errors):.2f}, "
          f"p90 {np.percentile(errors, 90):.2f}, max {errors.max():.2f}; "
          f"{np.mean(errors <= 1):.1%} within 1 frame")
    sure = confident >= 0.05
    if sure.any():
        print(f"  with confidence >= 0.05 ({sure.sum()} clips): {np.mean(errors[sure] <= 1):.1%} "
              f"within 1 frame, max {errors[sure].max():.2f}")


def boxes() -> None:
    scenes = [((1280, 720), (100, 400, 1100, 520)), ((1280, 720), (300, 100, 820, 180)),
              ((1280, 720), (200, 500, 1240, 640)), ((640, 360), (20, 200, 600, 260)),
              ((960, 540), (60, 300, 900, 380))]
    ious = []
    for size, box in scenes:
        for seed in range(3):
            found = detect_keyboard([synthetic.keyboard_scene(size, box, seed=seed)])
            ious.append(iou(found.box, box) if found.box else 0.0)
    print(f"keyboard box on {len(ious)} rendered scenes (clutter, hands, 5 positions/scales): "
          f"IoU min {min(ious):.3f}, median {np.median(ious):.3f}; {np.mean(np.array(ious) >= 0.9):.0%} >= 0.9")
    yt = []
    with open(ROOT / "manifests" / "pianoyt2h.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    for k, row in enumerate(rows):
        box = tuple(int(row[c]) for c in ("crop_x0", "crop_y0", "crop_x1", "crop_y1"))
        found = detect_keyboard([synthetic.keyboard_scene((1920, 1080), box, seed=k)])
        yt.append(iou(found.box, box) if found.box else 0.0)
    print(f"keyboard box at the {len(yt)} PianoYT-2h boxes (1920x1080 rendered frames): "
          f"IoU min {min(yt):.3f}, median {np.median(yt):.3f}; {np.mean(np.array(yt) >= 0.9):.0%} >= 0.9")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=12, help="clips per class (default 12)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    parser.add_argument("--offset-performances", type=int, default=4)
    args = parser.parse_args()
    boxes()
    offsets(args.offset_performances)
    piano_auc(args.clips, args.seconds)


if __name__ == "__main__":
    main()
