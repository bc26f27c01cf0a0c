"""MIDI metrics: transcribe the output, compare with the reference MIDI.

The output audio is transcribed with the same path copdata uses
(``copdata.transcribe.get_transcriber()``, basic-pitch through onnxruntime).

Note level (``mir_eval.transcription.precision_recall_f1_overlap``):

- ``midi_note_precision``, ``midi_note_recall``, ``midi_note_f1``: onsets only,
  onset tolerance 50 ms, pitch tolerance 50 cents;
- ``midi_note_f1_offset``: additionally the offset within
  ``max(0.2 * reference duration, 50 ms)``.

Frame level, on the 25 fps (the dataset fps) piano roll of
``copdata.roll.render_roll`` (a cell is active when its value is > 0):
precision = |est & ref| / |est|, recall = |est & ref| / |ref|,
F1 = 2PR / (P + R); ``midi_frame_*`` over all 88 keys and
``midi_frame_*_audeo`` over keys 15-65 (MIDI 36-86), the Audeo subset.

A silent output (below copdata's -80 dBFS transcription threshold) has no notes.
Empty sets: when the reference and the estimate are both empty, every value is
1 (perfect agreement); when exactly one is empty, every value is 0 (as
mir_eval returns). F1 is 0 when P + R = 0.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import mir_eval
import numpy as np

from copdata.errors import SilentInputError
from copdata.notes import Note, notes_to_arrays
from copdata.roll import render_roll

from .base import Metric, ScoreItem

NAME = "midi"
VERSION = "1.0"
ONSET_TOLERANCE = 0.05
PITCH_TOLERANCE_CENTS = 50.0
OFFSET_RATIO = 0.2
OFFSET_MIN_TOLERANCE = 0.05
AUDEO_KEYS = (15, 65)  # inclusive key indices: MIDI 36..86


def _intervals_pitches(notes: Sequence[Note]) -> tuple[np.ndarray, np.ndarray]:
    arr = notes_to_arrays(notes)
    intervals = np.stack([arr["start"], arr["end"]], axis=1) if len(notes) else np.zeros((0, 2))
    return intervals, mir_eval.util.midi_to_hz(arr["pitch"].astype(np.float64))


def _empty_case(n_ref: int, n_est: int) -> float | None:
    if n_ref == 0 and n_est == 0:
        return 1.0
    if n_ref == 0 or n_est == 0:
        return 0.0
    return None


def note_scores(reference: Sequence[Note], estimate: Sequence[Note]) -> dict[str, float]:
    """Note-level P/R/F1 (onset only) and F1 with offsets."""
    fixed = _empty_case(len(reference), len(estimate))
    if fixed is not None:
        return {k: fixed for k in ("midi_note_precision", "midi_note_recall", "midi_note_f1",
                                   "midi_note_f1_offset")}
    ref_i, ref_p = _intervals_pitches(reference)
    est_i, est_p = _intervals_pitches(estimate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ref_i, ref_p, est_i, est_p, onset_tolerance=ONSET_TOLERANCE,
            pitch_tolerance=PITCH_TOLERANCE_CENTS, offset_ratio=None)
        _, _, f_off, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ref_i, ref_p, est_i, est_p, onset_tolerance=ONSET_TOLERANCE,
            pitch_tolerance=PITCH_TOLERANCE_CENTS, offset_ratio=OFFSET_RATIO,
            offset_min_tolerance=OFFSET_MIN_TOLERANCE)
    return {"midi_note_precision": float(p), "midi_note_recall": float(r),
            "midi_note_f1": float(f), "midi_note_f1_offset": float(f_off)}


def frame_scores(ref_roll: np.ndarray, est_roll: np.ndarray, suffix: str = "") -> dict[str, float]:
    """Frame-level P/R/F1 of two rolls of equal shape (active = value > 0)."""
    if ref_roll.shape != est_roll.shape:
        raise ValueError(f"rolls differ in shape: {ref_roll.shape} vs {est_roll.shape}")
    ref, est = ref_roll > 0, est_roll > 0
    n_ref, n_est = int(ref.sum()), int(est.sum())
    names = [f"midi_frame_{m}{suffix}" for m in ("precision", "recall", "f1")]
    fixed = _empty_case(n_ref, n_est)
    if fixed is not None:
        return dict.fromkeys(names, fixed)
    tp = int((ref & est).sum())
    p, r = tp / n_est, tp / n_ref
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return dict(zip(names, (float(p), float(r), float(f))))


def midi_scores(reference: Sequence[Note], estimate: Sequence[Note], num_frames: int,
                fps: float, ref_roll: np.ndarray | None = None) -> dict[str, float]:
    """All MIDI columns from two note lists (``ref_roll`` defaults to the
    reference notes rendered with ``render_roll``)."""
    if ref_roll is None:
        ref_roll = render_roll(reference, num_frames, fps)
    est_roll = render_roll(estimate, num_frames, fps)
    out = note_scores(reference, estimate)
    out.update(frame_scores(ref_roll, est_roll))
    lo, hi = AUDEO_KEYS
    out.update(frame_scores(ref_roll[:, lo:hi + 1], est_roll[:, lo:hi + 1], suffix="_audeo"))
    return out


_COLUMNS = ["midi_note_precision", "midi_note_recall", "midi_note_f1", "midi_note_f1_offset"]
_COLUMNS += [f"midi_frame_{m}{s}" for s in ("", "_audeo") for m in ("precision", "recall", "f1")]


class MidiMetric(Metric):
    NAME = NAME
    VERSION = VERSION
    COLUMNS = dict.fromkeys(_COLUMNS, True)

    def __init__(self):
        from copdata.transcribe import get_transcriber
        self.transcriber = get_transcriber()

    def settings(self) -> dict:
        return {"onset_tolerance_s": ONSET_TOLERANCE, "pitch_tolerance_cents": PITCH_TOLERANCE_CENTS,
                "offset_ratio": OFFSET_RATIO, "offset_min_tolerance_s": OFFSET_MIN_TOLERANCE,
                "frame_roll": "copdata.roll.render_roll at the dataset fps",
                "audeo_keys": list(AUDEO_KEYS), "transcriber": self.transcriber.info()}

    def score(self, item: ScoreItem) -> dict[str, float]:
        try:
            estimate = self.transcriber.transcribe(item.audio, item.sample_rate,
                                                   item=item.clip_id)
        except SilentInputError:
            estimate = []  # a silent output transcribes to no notes
        clip = item.clip
        return midi_scores(item.reference_notes(), estimate, clip.num_frames, clip.fps,
                           ref_roll=clip.roll())
