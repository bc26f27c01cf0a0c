"""Where each key of an upright keyboard strip lies: MIDI pitch to column.

The keyboard **strip** is the keyboard cropped and turned upright, low keys on
the left, black keys above the white keys' fronts
(:func:`copdata.qa.orient.strip_matrix`).

The black keys' centres come from the detector's black-key lattice
(:func:`copdata.qa.keyboard.detect_keyboard` on the strip's median). Their
spacings (from C#: short, long, short, short, long) name them
(:func:`black_phase`); the octave is known when all 36 black keys of an
88-key piano are seen (the first is A#0) or ``first_black_pitch`` is given.
A **partial** lattice (at least :data:`MIN_PARTIAL_BLACK` consecutive black
keys, no key skipped: :func:`lattice_fits`) names the pitch classes but not
the octave: :func:`find_key_map` gives its columns with every octave it could
be (:func:`octave_candidates`), for the audio to choose
(:func:`copdata.qa.keyoffset.octave_key_offset`).
White keys have equal width, black keys sit at the boundary between their
white neighbours plus a standard offset per pitch class
(:data:`BLACK_OFFSET`): a cubic in the white-key index, fitted to the black
keys' centres, gives every white key's edges (a camera's perspective makes far
keys narrower), so each MIDI pitch gets its column (:class:`KeyColumns`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

BLACK_PITCH_CLASSES = (1, 3, 6, 8, 10)
# black key centre minus the boundary between its white neighbours, in white
# keys, per pitch class (fitted on the AI-Pianist development videos' lattices)
BLACK_OFFSET = {1: -0.1, 3: 0.1, 6: -0.15, 8: 0.0, 10: 0.1}
# gaps between consecutive black keys from C#: C#-D# short, D#-F# long,
# F#-G# short, G#-A# short, A#-C# long
_GAP_LONG = (False, True, False, False, True)
_BLACK_ORDER = (1, 3, 6, 8, 10)
BLACK_KEY_WIDTH = 0.56  # in white keys
FULL_BLACK_KEYS = 36  # an 88-key piano: A#0 .. A#7
PIANO_LOWEST, PIANO_HIGHEST = 21, 108  # A0, C8: no key map names a pitch outside
# a partial lattice: at least two octaves of black keys (the gap pattern names
# them reliably), each within this many white keys of the smooth fit through
# all of them (a black key hidden mid-lattice and bridged by the detector puts
# the keys after it a whole or half white key off)
MIN_PARTIAL_BLACK = 10
MAX_FIT_RESIDUAL_WHITE = 0.3


@dataclass(frozen=True)
class KeyColumns:
    """Where each visible key lies in the strip: ``pitches`` (MIDI) with their
    column ``[x0, x1)`` in strip pixels, whether each is black, the row where
    the black keys end (``black_bottom``) and the strip's size."""

    pitches: tuple[int, ...]
    x0: tuple[float, ...]
    x1: tuple[float, ...]
    black: tuple[bool, ...]
    black_bottom: int
    width: int
    height: int

    def shifted(self, semitones: int) -> "KeyColumns":
        """The same columns named ``semitones`` higher (a multiple of 12: the
        same keys one or more octaves up or down); pitches outside the piano
        keep their column and match no note."""
        if int(semitones) % 12:
            raise ValueError(f"a key map moves by whole octaves, not {semitones} semitones")
        return replace(self, pitches=tuple(p + int(semitones) for p in self.pitches))

    def column(self, pitch: int) -> tuple[float, float] | None:
        try:
            k = self.pitches.index(int(pitch))
        except ValueError:
            return None
        return self.x0[k], self.x1[k]


def is_black(pitch: int) -> bool:
    return int(pitch) % 12 in BLACK_PITCH_CLASSES


def white_index(pitch: int) -> int:
    """White keys below ``pitch`` counted from MIDI 0 (C-1 is white key 0)."""
    pitch = int(pitch)
    octave, pc = divmod(pitch, 12)
    return 7 * octave + sum(1 for q in range(pc) if q not in BLACK_PITCH_CLASSES)


def black_phase(centres: Sequence[float]) -> int:
    """Pitch class of the first of consecutive black keys at ``centres``
    (left to right), from the pattern of long and short gaps between them.
    Each gap is divided by the mean of the five gaps around it (an octave:
    the camera's perspective cancels); the phase whose long gaps are the
    widest wins. ``ValueError`` with fewer than 6 keys."""
    centres = np.asarray(centres, float)
    if len(centres) < 6:
        raise ValueError(f"need at least 6 black keys to name them, got {len(centres)}")
    gaps = np.diff(centres)
    local = np.array([gaps[max(0, min(i - 2, len(gaps) - 5)):][:5].mean() for i in range(len(gaps))])
    rel = gaps / local
    pattern = np.where(np.array(_GAP_LONG), 1.0, -1.0)
    scores = [float(np.sum(rel * pattern[(np.arange(len(rel)) + ph) % 5])) for ph in range(5)]
    return _BLACK_ORDER[int(np.argmax(scores))]


def black_pitches(centres: Sequence[float], first_black_pitch: int) -> list[int]:
    """MIDI pitches of consecutive black keys starting at ``first_black_pitch``."""
    out, p = [], int(first_black_pitch)
    if not is_black(p):
        raise ValueError(f"pitch {p} is not a black key")
    for _ in range(len(centres)):
        out.append(p)
        p += 1
        while not is_black(p):
            p += 1
    return out


def _fit(centres: np.ndarray, first_black_pitch: int):
    pitches = black_pitches(centres, first_black_pitch)
    boundary = np.array([white_index(p) + BLACK_OFFSET[p % 12] for p in pitches])
    mid = boundary.mean()
    degree = 3 if len(centres) >= 10 else 1
    return pitches, boundary, mid, np.polyfit(boundary - mid, centres, degree)


def lattice_fits(centres: Sequence[float], first_black_pitch: int) -> bool:
    """Whether the black keys at ``centres``, named consecutively from
    ``first_black_pitch``, lie on one smooth keyboard: every centre within
    :data:`MAX_FIT_RESIDUAL_WHITE` white keys of the cubic through all of
    them (a skipped key breaks the gap pattern after it)."""
    centres = np.asarray(centres, float)
    _, boundary, mid, poly = _fit(centres, first_black_pitch)
    white = np.abs(np.polyval(np.polyder(poly), boundary - mid))  # pixels per white key
    residual = np.abs(np.polyval(poly, boundary - mid) - centres) / np.maximum(white, 1e-9)
    return bool(residual.max() <= MAX_FIT_RESIDUAL_WHITE)


def octave_candidates(centres: Sequence[float], phase: int) -> list[int]:
    """First-black-key pitches (pitch class ``phase``) that put at least half
    of the lattice's black keys on an 88-key piano, low to high: the octaves
    the audio chooses between."""
    n = len(centres)
    out = []
    for first in range(phase, 128, 12):
        on = sum(PIANO_LOWEST <= p <= PIANO_HIGHEST for p in black_pitches(range(n), first))
        if 2 * on >= n:
            out.append(first)
    return out


def key_columns(centres: Sequence[float], first_black_pitch: int, width: int, height: int,
                black_bottom: int, lowest: int = PIANO_LOWEST, highest: int = PIANO_HIGHEST
                ) -> KeyColumns:
    """The columns of every key (white and black) whose column lies at least
    half inside ``[0, width)`` (a black key also needs the boundary of its white
    neighbours a quarter white key inside), from the black keys' ``centres`` in the strip
    and the first one's pitch (see the module docstring); pitches
    ``lowest..highest`` (the piano's; a wider range for a map that
    :meth:`KeyColumns.shifted` will move by octaves)."""
    centres = np.asarray(centres, float)
    pitches, boundary, mid, poly = _fit(centres, first_black_pitch)

    def x_at(j: float) -> float:
        return float(np.polyval(poly, j - mid))

    lo_white = int(math.floor(boundary.min())) - 3
    hi_white = int(math.ceil(boundary.max())) + 3
    keys = []
    for p in range(int(lowest), int(highest) + 1):
        j = white_index(p)
        if j < lo_white or j > hi_white:
            continue
        if is_black(p):
            # a black key lies across the boundary of its white neighbours: with
            # that boundary not a quarter white key inside the strip (the
            # keyboard ends at a neighbour's edge, found to a pixel or so), the
            # key is not in it
            margin = 0.25 * (x_at(j + 0.5) - x_at(j - 0.5))
            if not margin < x_at(j) < width - margin:
                continue
            if p in pitches:
                centre = float(centres[pitches.index(p)])
            else:
                centre = x_at(j + BLACK_OFFSET[p % 12])
            half = 0.5 * BLACK_KEY_WIDTH * (x_at(j + 0.5) - x_at(j - 0.5))
            a, b = centre - half, centre + half
        else:
            a, b = x_at(j), x_at(j + 1)
        if b <= a:
            continue
        inside = (min(b, width) - max(a, 0.0)) / (b - a)
        if inside >= 0.5:
            keys.append((p, a, b, is_black(p)))
    return KeyColumns(tuple(k[0] for k in keys), tuple(round(k[1], 3) for k in keys),
                      tuple(round(k[2], 3) for k in keys), tuple(k[3] for k in keys),
                      int(black_bottom), int(width), int(height))


@dataclass(frozen=True)
class Lattice:
    """The black keys found in a strip's frames: their ``centres`` (strip
    pixels, left to right), the pitch class of the first (``phase``), the row
    where the black keys end and the strip's size."""

    centres: tuple[float, ...]
    phase: int
    black_bottom: int
    width: int
    height: int

    @property
    def full(self) -> bool:
        """All 36 black keys of an 88-key piano, A#0 first: the octave is known."""
        return len(self.centres) == FULL_BLACK_KEYS and self.phase == 10


def find_lattice(frames: Sequence[np.ndarray]) -> Lattice | None:
    """The black-key lattice of an upright strip from its frames (their
    per-pixel median; frames spread over the whole video let moving hands
    uncover every key), or None when fewer than 6 black keys are found."""
    from .keyboard import detect_keyboard, frames_grey

    grey = frames_grey(list(frames))
    h, w = grey.shape
    pad = max(h // 2, 8)  # the detector looks for a keyboard inside a scene
    padded = np.pad(grey, pad, mode="constant", constant_values=float(np.median(grey)) * 0.5)
    found = detect_keyboard([padded])
    if found.box is None or len(found.centres) < 6:
        return None
    centres = np.asarray(found.centres, float) - pad
    cols = np.clip(np.round(centres).astype(int), 0, w - 1)
    profile = grey[:, cols].mean(axis=1)
    dark = np.flatnonzero(profile < (profile.min() + profile.max()) / 2)
    black_bottom = int(dark.max()) + 1 if len(dark) else h // 2
    return Lattice(tuple(float(c) for c in centres), black_phase(centres), black_bottom, w, h)


def find_key_columns(frames: Sequence[np.ndarray], first_black_pitch: int | None = None
                     ) -> KeyColumns | None:
    """The key columns of an upright keyboard strip from its frames (their
    median; see the module docstring), or None when no black-key lattice is
    found or its octave is unknown (fewer than all 36 black keys and no
    ``first_black_pitch``)."""
    lattice = find_lattice(frames)
    if lattice is None:
        return None
    if first_black_pitch is None:
        if not lattice.full:
            return None
        first_black_pitch = 22  # A#0
    elif lattice.phase != int(first_black_pitch) % 12:
        return None
    return key_columns(lattice.centres, first_black_pitch, lattice.width, lattice.height,
                       lattice.black_bottom)


def key_map(lattice: Lattice | None) -> tuple[KeyColumns, tuple[int, ...] | None] | None:
    """``(columns, shifts)`` of a lattice: for a full one its columns and
    ``None`` (octave known); for a partial one (at least
    :data:`MIN_PARTIAL_BLACK` black keys that :func:`lattice_fits`) the
    columns named from the lowest of :func:`octave_candidates` over a wide
    pitch range and the semitone shifts (0, 12, ...) to each candidate, for
    :func:`copdata.qa.keyoffset.octave_key_offset`; else None."""
    if lattice is None:
        return None
    if lattice.full:
        return key_columns(lattice.centres, 22, lattice.width, lattice.height,
                           lattice.black_bottom), None
    if len(lattice.centres) < MIN_PARTIAL_BLACK:
        return None
    candidates = octave_candidates(lattice.centres, lattice.phase)
    if not candidates or not lattice_fits(lattice.centres, candidates[0]):
        return None
    base = key_columns(lattice.centres, candidates[0], lattice.width, lattice.height,
                       lattice.black_bottom, lowest=0, highest=127)
    return base, tuple(c - candidates[0] for c in candidates)


def best_lattice(frame_sets: Sequence[Sequence[np.ndarray]]) -> Lattice | None:
    """The best of the lattices found on several medians (:func:`find_lattice`
    of each set of frames: hands hide different keys in each): the first full
    one, else the partial one with the most black keys that
    :func:`key_map` accepts, else None."""
    best = None
    for frames in frame_sets:
        if not len(frames):
            continue
        lattice = find_lattice(frames)
        if lattice is None:
            continue
        if lattice.full:
            return lattice
        if key_map(lattice) is not None and (best is None or len(lattice.centres) > len(best.centres)):
            best = lattice
    return best


def find_key_map(frames: Sequence[np.ndarray], extra: Sequence[Sequence[np.ndarray]] = ()
                 ) -> tuple[KeyColumns, tuple[int, ...] | None] | None:
    """:func:`key_map` of the :func:`best_lattice` of ``frames``' median and
    of each of ``extra`` (more sets of frames)."""
    return key_map(best_lattice([frames, *extra]))
