"""A top-down 88-key keyboard video whose pressed keys follow the piano roll.

The picture is a piano seen from above: a felt strip at the top, 52 white keys
(A0..C8) side by side with 1-pixel gaps, and 36 black keys in the real layout
(groups of two and three, slightly offset inside each group) covering the upper
:data:`BLACK_KEY_LENGTH` of the keys. A pressed key is coloured by its velocity:
blue when soft through violet to red when loud, lighter on white keys and darker
on black keys, so "pressed", "which key" and "how hard" are all visible.

:meth:`KeyboardRenderer.frames` decides which keys are pressed in frame i with
exactly :func:`copdata.roll.render_roll` (frame i covers ``[i/fps, (i+1)/fps)``),
so the video and the roll view of a clip always agree. A frame is one lookup
``palette[key_map]`` in a precomputed per-pixel key index.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..notes import NUM_KEYS, PIANO_LOW, Note
from ..roll import render_roll

DEFAULT_WIDTH = 520
DEFAULT_HEIGHT = 80
BLACK_KEY_LENGTH = 0.62  # fraction of the key height (below the felt strip)
BLACK_KEY_WIDTH = 0.6  # fraction of a white key's width
FELT_FRACTION = 0.08
_BLACK_PCS = {1, 3, 6, 8, 10}
# Offset of a black key's centre from the boundary of its two white neighbours,
# as a fraction of the white key width (C# D# lean apart, F# G# A# spread).
_BLACK_OFFSET = {1: -0.12, 3: 0.12, 6: -0.15, 8: 0.0, 10: 0.15}

WHITE = np.array([246, 244, 238], dtype=np.float64)
BLACK = np.array([24, 22, 26], dtype=np.float64)
GAP = np.array([90, 88, 92], dtype=np.uint8)
FELT = np.array([120, 24, 32], dtype=np.uint8)
_SOFT = np.array([40, 110, 255], dtype=np.float64)
_MID = np.array([170, 60, 230], dtype=np.float64)
_LOUD = np.array([255, 40, 30], dtype=np.float64)


def is_black(pitch: int) -> bool:
    return (int(pitch) % 12) in _BLACK_PCS


def velocity_color(velocity: int) -> np.ndarray:
    """Pressed-key colour for ``velocity`` 1..127: blue -> violet -> red."""
    x = min(max(int(velocity), 1), 127) / 127.0
    if x < 0.5:
        return _SOFT + (_MID - _SOFT) * (x / 0.5)
    return _MID + (_LOUD - _MID) * ((x - 0.5) / 0.5)


class KeyboardRenderer:
    """Renders 88-key keyboard frames of ``height x width`` (both even, H.264)."""

    def __init__(self, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT):
        width, height = int(width), int(height)
        if width % 2 or height % 2:
            raise ValueError(f"frame size must be even for H.264, got {width}x{height}")
        if width < 52 * 4 or height < 16:
            raise ValueError(f"frame size {width}x{height} too small: need width >= 208 "
                             "(4 pixels per white key) and height >= 16")
        self.width, self.height = width, height
        self.key_map = self._build_key_map()
        self._palette_cache: dict[bytes, np.ndarray] = {}
        self._palette = self._base_palette()

    # -- geometry -----------------------------------------------------------
    def _build_key_map(self) -> np.ndarray:
        """Per-pixel key index 0..87, 88 = gap between white keys, 89 = felt."""
        h, w = self.height, self.width
        key_map = np.full((h, w), NUM_KEYS, dtype=np.int16)
        felt = max(int(round(h * FELT_FRACTION)), 1)
        key_map[:felt] = NUM_KEYS + 1
        pitches = np.arange(PIANO_LOW, PIANO_LOW + NUM_KEYS)
        white = [int(p) for p in pitches if not is_black(p)]
        assert len(white) == 52
        edges = np.round(np.linspace(0, w, 53)).astype(int)
        white_index = {}
        for i, p in enumerate(white):
            x0, x1 = edges[i], edges[i + 1] - 1  # last column is the gap
            key_map[felt:, x0:x1] = p - PIANO_LOW
            white_index[p] = i
        white_w = w / 52.0
        black_w = max(int(round(white_w * BLACK_KEY_WIDTH)), 2)
        black_h = felt + int(round((h - felt) * BLACK_KEY_LENGTH))
        for p in pitches:
            if not is_black(p):
                continue
            boundary = edges[white_index[int(p) - 1] + 1]  # right edge of the white key below
            centre = boundary + _BLACK_OFFSET[int(p) % 12] * white_w
            x0 = int(round(centre - black_w / 2.0))
            key_map[felt:black_h, max(x0, 0):min(x0 + black_w, w)] = p - PIANO_LOW
        return key_map

    def key_boxes(self) -> dict[int, tuple[int, int, int, int]]:
        """Bounding box ``(x0, y0, x1, y1)`` (exclusive ends) of each key's pixels, by pitch."""
        boxes = {}
        for k in range(NUM_KEYS):
            ys, xs = np.nonzero(self.key_map == k)
            boxes[PIANO_LOW + k] = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        return boxes

    # -- colours ------------------------------------------------------------
    def _base_palette(self) -> np.ndarray:
        palette = np.zeros((NUM_KEYS + 2, 3), dtype=np.uint8)
        for k in range(NUM_KEYS):
            palette[k] = BLACK if is_black(PIANO_LOW + k) else WHITE
        palette[NUM_KEYS] = GAP
        palette[NUM_KEYS + 1] = FELT
        return palette

    def _pressed_palette(self, active: np.ndarray) -> np.ndarray:
        palette = self._palette.copy()
        for k in np.flatnonzero(active):
            color = velocity_color(int(active[k]))
            if is_black(PIANO_LOW + int(k)):
                palette[k] = np.round(color * 0.7).astype(np.uint8)
            else:
                palette[k] = np.round(0.25 * WHITE + 0.75 * color).astype(np.uint8)
        return palette

    # -- frames -------------------------------------------------------------
    def frame(self, active: np.ndarray) -> np.ndarray:
        """One ``uint8 (H, W, 3)`` RGB frame; ``active[k]`` is the velocity of key
        ``21 + k`` (0 = not pressed)."""
        active = np.asarray(active)
        if active.shape != (NUM_KEYS,):
            raise ValueError(f"active must have shape (88,), got {active.shape}")
        if not active.any():
            palette = self._palette
        else:
            key = np.asarray(active, dtype=np.uint8).tobytes()
            palette = self._palette_cache.get(key)
            if palette is None:
                palette = self._pressed_palette(active)
                if len(self._palette_cache) > 4096:
                    self._palette_cache.clear()
                self._palette_cache[key] = palette
        return palette[self.key_map]

    def frames(self, notes: Sequence[Note], fps: float, num_frames: int) -> Iterator[np.ndarray]:
        """Frames 0..num_frames-1; frame i shows the keys of ``render_roll(notes,
        num_frames, fps)[i]``."""
        roll = render_roll(notes, num_frames, fps)
        for i in range(int(num_frames)):
            yield self.frame(roll[i])
