"""Scoring notes against notes and rolls against rolls: the one implementation.

copbench's MIDI metric, copmodel's preference ranking and the Roll
Predictor's evaluation all call these functions, so a "note F1" or a "frame
F1" means the same thing everywhere.

Note level (:func:`note_scores`, ``mir_eval.transcription``): onsets within
50 ms, pitches within 50 cents; ``*_f1_offset`` also needs the offset within
``max(0.2 * reference duration, 50 ms)``.

Frame level, micro (:func:`frame_scores`): over all (frame, key) cells of two
rolls of one shape, a cell active when its value is > 0: precision =
``|est & ref| / |est|``, recall = ``|est & ref| / |ref|``, F1 = ``2PR/(P+R)``.
:func:`frame_counts` gives the counts so callers can pool clips first.

Empty sets (one convention everywhere): reference and estimate both empty
gives 1 for every value (perfect agreement); exactly one empty gives 0 (as
mir_eval returns); F1 is 0 when P + R = 0. :func:`is_both_empty` lets callers
count how often the convention decided a value.

Seed-paper frame metric (:func:`seed_frame_scores`): exactly the evaluation
of acappemin/Video-to-Audio-and-Piano (``src/audeo/Roll2Midi_evaluate_tv2a.py``
with ``Roll2Midi_dataset_tv2a_eval.py``): rolls at 25 fps cut into 2 s
chunks of 50 frames (the last zero-padded), keys 15-65 (MIDI 36-86, 51
columns), binarised with ``> 0``; consecutive chunks of the whole ordered
list are concatenated into 4 s windows ``(chunk i, chunk i + 1)`` (so every
chunk but the first and last is counted twice), all frames pooled, and
scikit-learn's ``precision/recall/f1_score(average="weighted",
zero_division=1)`` taken over the 51 key columns (per-key scores weighted by
each key's reference support); ``accuracy`` is the mean per-frame Jaccard with
``zero_division=1``.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import mir_eval
import numpy as np

from .notes import Note, notes_to_arrays

ONSET_TOLERANCE = 0.05
PITCH_TOLERANCE_CENTS = 50.0
OFFSET_RATIO = 0.2
OFFSET_MIN_TOLERANCE = 0.05
SEED_KEYS = (15, 65)  # inclusive key indices (column k = MIDI 21 + k): MIDI 36..86
SEED_CHUNK_FRAMES = 50  # 2 s at 25 fps
SEED_FPS = 25.0
NOTE_KEYS = ("precision", "recall", "f1", "f1_offset")


def _intervals_pitches(notes: Sequence[Note]) -> tuple[np.ndarray, np.ndarray]:
    arr = notes_to_arrays(notes)
    intervals = np.stack([arr["start"], arr["end"]], axis=1) if len(notes) else np.zeros((0, 2))
    return intervals, mir_eval.util.midi_to_hz(arr["pitch"].astype(np.float64))


def empty_case(n_ref: int, n_est: int) -> float | None:
    """The convention's value when a side is empty, else None."""
    if n_ref == 0 and n_est == 0:
        return 1.0
    if n_ref == 0 or n_est == 0:
        return 0.0
    return None


def is_both_empty(n_ref: int, n_est: int) -> bool:
    return n_ref == 0 and n_est == 0


def note_scores(reference: Sequence[Note], estimate: Sequence[Note]) -> dict[str, float]:
    """Note-level ``precision``, ``recall``, ``f1`` (onsets only) and ``f1_offset``."""
    fixed = empty_case(len(reference), len(estimate))
    if fixed is not None:
        return dict.fromkeys(NOTE_KEYS, fixed)
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
    return {"precision": float(p), "recall": float(r), "f1": float(f), "f1_offset": float(f_off)}


def frame_counts(ref_roll: np.ndarray, est_roll: np.ndarray) -> tuple[int, int, int]:
    """``(true positives, |est|, |ref|)`` over cells of two rolls of one shape."""
    ref_roll, est_roll = np.asarray(ref_roll), np.asarray(est_roll)
    if ref_roll.shape != est_roll.shape:
        raise ValueError(f"rolls differ in shape: {ref_roll.shape} vs {est_roll.shape}")
    ref, est = ref_roll > 0, est_roll > 0
    return int((ref & est).sum()), int(est.sum()), int(ref.sum())


def scores_from_counts(tp: int, n_est: int, n_ref: int) -> dict[str, float]:
    """Micro precision/recall/F1 from counts, with the empty-set convention."""
    fixed = empty_case(n_ref, n_est)
    if fixed is not None:
        return dict.fromkeys(("precision", "recall", "f1"), fixed)
    p, r = tp / n_est, tp / n_ref
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


def frame_scores(ref_roll: np.ndarray, est_roll: np.ndarray) -> dict[str, float]:
    """Micro frame-level ``precision``, ``recall``, ``f1`` of two rolls of one shape."""
    return scores_from_counts(*frame_counts(ref_roll, est_roll))


def _seed_chunks(roll: np.ndarray) -> list[np.ndarray]:
    lo, hi = SEED_KEYS
    keys = (np.asarray(roll)[:, lo:hi + 1] > 0).astype(np.int64)
    out = []
    for start in range(0, keys.shape[0], SEED_CHUNK_FRAMES):
        chunk = keys[start:start + SEED_CHUNK_FRAMES]
        if chunk.shape[0] != SEED_CHUNK_FRAMES:
            chunk = np.pad(chunk, ((0, SEED_CHUNK_FRAMES - chunk.shape[0]), (0, 0)))
        out.append(chunk)
    return out


def seed_frame_scores(ref_rolls: Sequence[np.ndarray], est_rolls: Sequence[np.ndarray]) -> dict[str, float]:
    """The seed paper's frame metric over clips given in order (88-key rolls at 25 fps).

    Returns ``precision``, ``recall``, ``f1`` (sklearn ``average="weighted"``,
    ``zero_division=1``) and ``accuracy`` (mean sample-wise Jaccard)."""
    from sklearn import metrics

    if len(ref_rolls) != len(est_rolls):
        raise ValueError("seed_frame_scores needs one estimate roll per reference roll")
    ref_chunks, est_chunks = [], []
    for ref, est in zip(ref_rolls, est_rolls):
        if np.shape(ref) != np.shape(est):
            raise ValueError(f"rolls differ in shape: {np.shape(ref)} vs {np.shape(est)}")
        ref_chunks += _seed_chunks(ref)
        est_chunks += _seed_chunks(est)
    if len(ref_chunks) < 2:
        raise ValueError("the seed frame metric needs at least two 2 s chunks (4 s of audio)")
    pairs = range(len(ref_chunks) - 1)
    label = np.vstack([np.vstack([ref_chunks[i], ref_chunks[i + 1]]) for i in pairs])
    pred = np.vstack([np.vstack([est_chunks[i], est_chunks[i + 1]]) for i in pairs])
    tp = (label & pred).sum(axis=1)
    union = (label | pred).sum(axis=1)
    jaccard = np.where(union == 0, 1.0, tp / np.maximum(union, 1))
    kw = {"average": "weighted", "zero_division": 1}
    return {"precision": float(metrics.precision_score(label, pred, **kw)),
            "recall": float(metrics.recall_score(label, pred, **kw)),
            "f1": float(metrics.f1_score(label, pred, **kw)),
            "accuracy": float(np.mean(jaccard))}
