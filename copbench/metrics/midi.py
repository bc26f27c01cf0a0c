"""MIDI metrics: transcribe the output, compare with the reference MIDI.

The output audio is transcribed with the same path copdata uses
(``copdata.transcription.transcriber_for``): basic-pitch through onnxruntime by
default, Transkun with ``copbench run --transcriber transkun``; the
transcriber's name, version, settings and note post-processing are recorded
in the results (``settings.transcriber``).
All scoring is :mod:`copdata.scoring` (the one implementation copmodel uses too).

Per clip (mean over clips, bootstrap CI):

- ``midi_note_precision``, ``midi_note_recall``, ``midi_note_f1``: onsets only,
  50 ms, 50 cents (``mir_eval.transcription``); ``midi_note_f1_offset`` with
  offsets (ratio 0.2, min 50 ms);
- ``midi_frame_precision/recall/f1``: micro over the clip's (frame, key) cells
  of the ``copdata.roll.render_roll`` roll at the dataset fps, 88 keys;
  ``midi_frame_*_audeo``: the same over keys 15-65 (MIDI 36-86).

Set level (``midi_frame_*_seed``): the seed paper's frame metric exactly as
its evaluation script computes it (keys 15-65 at 25 fps, 2 s chunks paired
into 4 s windows, all frames pooled, scikit-learn ``average="weighted"``,
``zero_division=1``; :func:`copdata.scoring.seed_frame_scores`). This is the
number to compare with the paper; its CI is a percentile bootstrap over clips.
Needs the dataset at 25 fps (otherwise the columns are left out).

Conventions (counted in the results): a silent output transcribes to no notes;
reference and estimate both empty gives 1 for every value, exactly one empty 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from copdata import scoring
from copdata.errors import SilentInputError
from copdata.notes import Note
from copdata.roll import render_roll
from copdata.transcription import transcriber_info
from copdata.transcription.post import apply_steps

from ..stats import rng_for
from .base import Metric, ScoreItem

NAME = "midi"
VERSION = "1.1"
AUDEO_KEYS = scoring.SEED_KEYS
SEED_BOOT = 200


def note_scores(reference: Sequence[Note], estimate: Sequence[Note]) -> dict[str, float]:
    """Note-level columns (``midi_note_*``) of :func:`copdata.scoring.note_scores`."""
    return {f"midi_note_{k}": v for k, v in scoring.note_scores(reference, estimate).items()}


def frame_scores(ref_roll: np.ndarray, est_roll: np.ndarray, suffix: str = "") -> dict[str, float]:
    """Micro frame columns (``midi_frame_*<suffix>``) of :func:`copdata.scoring.frame_scores`."""
    return {f"midi_frame_{k}{suffix}": v for k, v in scoring.frame_scores(ref_roll, est_roll).items()}


def midi_scores(reference: Sequence[Note], estimate: Sequence[Note], num_frames: int,
                fps: float, ref_roll: np.ndarray | None = None) -> dict[str, float]:
    """All per-clip MIDI columns from two note lists (``ref_roll`` defaults to the
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
SEED_COLUMNS = [f"midi_frame_{m}_seed" for m in ("precision", "recall", "f1")]


class MidiMetric(Metric):
    NAME = NAME
    VERSION = VERSION
    COLUMNS = dict.fromkeys(_COLUMNS + SEED_COLUMNS, True)
    CONVENTIONS = {
        "silent_output": "output below -80 dBFS transcribes to no notes",
        "notes_both_empty": "reference and output have no notes: every note value is 1",
        "notes_one_empty": "exactly one side has no notes: every note value is 0",
        "frames_both_empty": "no active cell on either roll: every frame value is 1",
    }

    def __init__(self, name: str = "basic-pitch", device: str | None = None, note_post=()):
        from copdata.transcription import resolve_transcriber_name, transcriber_for
        from copdata.transcription.post import check_steps
        self.note_post = check_steps(note_post)
        self.transcriber = transcriber_for(resolve_transcriber_name(name), device=device)
        self._rolls: list[tuple[str, np.ndarray, np.ndarray]] = []
        self._fps: set[float] = set()

    def settings(self) -> dict:
        return {"onset_tolerance_s": scoring.ONSET_TOLERANCE,
                "pitch_tolerance_cents": scoring.PITCH_TOLERANCE_CENTS,
                "offset_ratio": scoring.OFFSET_RATIO,
                "offset_min_tolerance_s": scoring.OFFSET_MIN_TOLERANCE,
                "frame_roll": "copdata.roll.render_roll at the dataset fps",
                "audeo_keys": list(AUDEO_KEYS),
                "seed": "copdata.scoring.seed_frame_scores (Roll2Midi_evaluate_tv2a.py): keys "
                        "15-65, 25 fps, 2 s chunks paired into 4 s windows, pooled, sklearn "
                        "weighted, zero_division=1; CI: percentile bootstrap over clips "
                        f"({SEED_BOOT})",
                "transcriber": transcriber_info(self.transcriber, self.note_post)}

    def score(self, item: ScoreItem) -> dict[str, float]:
        try:
            estimate = self.transcriber.transcribe(item.audio, item.sample_rate,
                                                   item=item.clip_id)
            if self.note_post:
                estimate = apply_steps(estimate, self.note_post)
        except SilentInputError:
            estimate = []  # a silent output transcribes to no notes
            self.count_convention("silent_output")
        clip = item.clip
        reference = item.reference_notes()
        if scoring.is_both_empty(len(reference), len(estimate)):
            self.count_convention("notes_both_empty")
        elif not reference or not estimate:
            self.count_convention("notes_one_empty")
        ref_roll = clip.roll()
        est_roll = render_roll(estimate, clip.num_frames, clip.fps)
        _, n_est, n_ref = scoring.frame_counts(ref_roll, est_roll)
        if scoring.is_both_empty(n_ref, n_est):
            self.count_convention("frames_both_empty")
        self._rolls.append((item.clip_id, np.asarray(ref_roll), est_roll))
        self._fps.add(float(clip.fps))
        return midi_scores(reference, estimate, clip.num_frames, clip.fps, ref_roll=ref_roll)

    def finalize(self, seed: int) -> dict[str, dict]:
        if not self._rolls or self._fps != {scoring.SEED_FPS}:
            return {}
        rolls = sorted(self._rolls, key=lambda r: r[0])
        if sum(-(-r[1].shape[0] // scoring.SEED_CHUNK_FRAMES) for r in rolls) < 2:
            return {}
        refs, ests = [r[1] for r in rolls], [r[2] for r in rolls]
        value = scoring.seed_frame_scores(refs, ests)
        boots = []
        if len(rolls) > 1:
            rng = rng_for(seed, "midi_frame_seed")
            for _ in range(SEED_BOOT):
                pick = rng.integers(0, len(rolls), size=len(rolls))
                boots.append(scoring.seed_frame_scores([refs[i] for i in pick],
                                                       [ests[i] for i in pick]))
        out = {}
        for key in ("precision", "recall", "f1"):
            v = value[key]
            if boots:
                lo, hi = np.percentile([b[key] for b in boots], [2.5, 97.5])
                lo, hi = min(float(lo), v), max(float(hi), v)  # an interval holds its value
            else:
                lo = hi = v
            out[f"midi_frame_{key}_seed"] = {"mean": v, "ci95": [lo, hi], "n": len(rolls),
                                             "set_level": True}
        out["midi_frame_f1_seed"]["accuracy"] = value["accuracy"]
        return out
