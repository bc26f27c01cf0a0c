"""The piano-roll view: the one function that derives a roll from notes.

A roll is ``uint8 (T, 88)``; column k is MIDI pitch ``21 + k``; frame i covers
``[i/fps, (i+1)/fps)``. A cell is on when a note overlaps the frame, so a note
shorter than a frame still marks at least one frame; its value is the note's
velocity, the maximum where notes of the same key overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .notes import NUM_KEYS, PIANO_LOW, Note

_EPS = 1e-9


@dataclass(frozen=True)
class PianoRoll:
    """A roll together with its frame rate (frame i covers ``[i/fps, (i+1)/fps)``)."""

    roll: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.roll.shape[0])

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps

    def frame_times(self) -> np.ndarray:
        return np.arange(self.num_frames) / self.fps


def frame_span(start: float, end: float, fps: float) -> tuple[int, int]:
    """Half-open frame range ``[first, last)`` of frames a note overlaps."""
    first = int(math.floor(start * fps + _EPS))
    last = int(math.ceil(end * fps - _EPS))
    return first, max(last, first + 1)


def render_roll(notes: Sequence[Note], num_frames: int, fps: float) -> np.ndarray:
    """Render notes (clip time, seconds) to a ``uint8 (num_frames, 88)`` roll."""
    roll = np.zeros((int(num_frames), NUM_KEYS), dtype=np.uint8)
    for n in notes:
        if n.end <= n.start:
            continue
        k = int(n.pitch) - PIANO_LOW
        if not 0 <= k < NUM_KEYS:
            continue
        first, last = frame_span(n.start, n.end, fps)
        first, last = max(first, 0), min(last, num_frames)
        if first >= last:
            continue
        col = roll[first:last, k]
        np.maximum(col, np.uint8(min(max(int(n.velocity), 1), 127)), out=col)
    return roll


def roll_to_pitches(roll: np.ndarray) -> np.ndarray:
    """MIDI pitches of the roll's columns."""
    return np.arange(roll.shape[1]) + PIANO_LOW
