"""Find a top-down piano keyboard in video frames: its box and a confidence.

Plain functions over ``uint8`` frames ``(H, W, 3)`` (or grey ``(H, W)``).

Method (the periodic pattern of black keys above a band of white keys):

1. The frames are turned grey and their per-pixel **median** is taken, so hands
   that move between the sampled frames mostly vanish.
2. Each row is thresholded at the middle of its local range (a
   :data:`LOCAL_WINDOW_FRACTION`-of-the-width running min and max, where the
   range is at least :data:`MIN_CONTRAST` grey levels). Its dark runs are
   candidate black keys. A row's **chain** is the longest run of consecutive
   dark runs of similar width (ratio <= 2) whose centre spacing is at most
   :data:`MAX_SPACING_PER_WIDTH` times their width; a black key row of a piano
   has a chain of up to 36 keys, a row of clutter rarely more than a few.
3. Rows whose chain has at least :data:`MIN_CHAIN_KEYS` keys form bands (a band
   ends where the chain's ends move by more than :data:`BAND_EXTENT_JUMP` of the
   width, so a grating beside the keys is another band); the
   :data:`MAX_BANDS` bands with the most chained keys are candidates, and the
   most confident box over all candidates wins.
4. Columns dark in at least half of a band's rows are black keys if white keys
   bound them: within half their width past each end, along the rows, a column
   is bright (upper half of a local range of at least :data:`MIN_CONTRAST`) in
   half the band's rows. A dark background beside the keyboard is dark only as
   far as the local window reaches the white keys, a strip as wide as half the
   window (a fortieth of the frame, as wide as the widest black key), and flat
   beyond it: no key. Their chains are cut to the parts that follow the
   piano's grouping (every 5 consecutive spacings hold two long ones), which
   give the white-key width ``w`` (black keys five apart are an octave, 7
   white keys, apart) and seed a lattice of period ``7 w``. The lattice is walked outward over runs of the keys' width:
   hidden keys (a hand, up to :data:`MAX_BRIDGE_WHITE_KEYS` white keys) are
   bridged, runs of another width skipped, and :data:`MAX_LATTICE_MISSES`
   off-lattice runs in a row (a grating) stop the walk; at most
   :data:`PIANO_BLACK_SPAN` + :data:`SPAN_SLACK` white keys of keys are kept.
   The black-key rows are then those where most of the keys' centres are dark.
5. Below the black keys, rows stay in the keyboard while at least
   :data:`WHITE_ROW_FRACTION` of the span's pixels are bright (brighter than the
   midpoint of the band's dark and bright levels): that gives the bottom ``y1``,
   searched up to one black-key length below. An outermost key whose middle
   half (``0.5 w``) is not over bright white-key columns in those rows (a dark
   strip between the keyboard and the frame's edge) is dropped, the box found
   again from the others, and the confidence scaled by the share kept.
6. Left and right, the box extends from the outermost black keys over the
   bright white-key columns, at least ``0.5 w`` and at most ``2.5 w`` (one or
   two white keys lie beyond the outermost black key on every keyboard);
   without a clear end it assumes an 88-key piano (``1.15 w`` left of A#0,
   ``1.85 w`` right of A#7).

The box is ``(x0, y0, x1, y1)`` in the frames' pixels with ``x1``, ``y1``
exclusive, like the manifests' crop boxes. ``confidence`` in [0, 1] is the
product of (a) the share of spacings between neighbouring black keys that are
short (0.9-1.45 ``w``) or long (1.45-2.3 ``w``), times ``min(1, long share /
0.3)`` (zero above 0.6: an octave has two long spacings in five, a grating
none), (b)
``min(1, keys / 24)`` (keys found; 24 black keys is two thirds of a piano) and
(c) the share of bright pixels in the white-key band, times the share of the
walk's keys kept at step 5. ``keyboard_score`` of a
clip is the confidence on its (cropped) frames; 0 when nothing is found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

LOCAL_WINDOW_FRACTION = 0.05
MIN_CONTRAST = 60.0
MAX_SPACING_PER_WIDTH = 4.5
MIN_CHAIN_KEYS = 10
WHITE_ROW_FRACTION = 0.5
FULL_PIANO_KEYS = 24
MAX_BANDS = 5
BAND_EXTENT_JUMP = 0.02
MAX_BRIDGE_WHITE_KEYS = 9.0
LATTICE_TOLERANCE = 0.25
PIANO_BLACK_SPAN = 49  # white keys from the first black key (A#0) to the last (A#7)
# slack on that span: the white-key width is the median octave / 7, and a camera's
# perspective makes a piano's 49 white keys measure up to ~1.5 % more; the next black
# key beyond a piano's (G#0, C#8) is at least one white key further, so under 1
SPAN_SLACK = 0.9
# candidates this close (relative) to the most confident are told by their key count
CONFIDENCE_TIE = 0.05
MAX_LATTICE_MISSES = 3


@dataclass(frozen=True)
class KeyboardBox:
    """A detected keyboard: ``box`` (x0, y0, x1, y1; x1/y1 exclusive) or None."""

    box: tuple[int, int, int, int] | None
    confidence: float
    black_keys: int = 0
    white_key_width: float = 0.0
    # x of the black keys' centres (left to right) and whether the box's left /
    # right edge is the keyboard's own end (else a default width or the frame edge)
    centres: tuple[float, ...] = ()
    ends_found: tuple[bool, bool] = (False, False)

    def to_dict(self) -> dict:
        return {"box": list(self.box) if self.box else None, "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: dict) -> "KeyboardBox":
        box = d.get("box")
        return cls(tuple(int(v) for v in box) if box else None, float(d.get("confidence", 0.0)))


def median_grey(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel median of the frames' grey images (``float32``): moving
    hands vanish. Three or five frames take a min/max network (exactly
    ``np.median``, many times faster); other counts ``np.median``."""
    greys = [to_grey(f) for f in frames]
    if len(greys) == 1:
        return greys[0]
    if len({g.shape for g in greys}) == 1 and len(greys) in (3, 5):
        if len(greys) == 3:
            lo, hi, last = np.minimum(greys[0], greys[1]), np.maximum(greys[0], greys[1]), greys[2]
        else:
            a, b, c, d, last = greys
            lo = np.maximum(np.minimum(a, b), np.minimum(c, d))
            hi = np.minimum(np.maximum(a, b), np.maximum(c, d))
        # median of (last, lo, hi): max(min(x, y), min(max(x, y), z)) is any three's median
        return np.maximum(np.minimum(last, lo), np.minimum(np.maximum(last, lo), hi))
    return np.median(np.stack(greys), axis=0).astype(np.float32)


def to_grey(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        return frame.astype(np.float32)
    if frame.ndim != 3 or frame.shape[2] < 3:
        raise ValueError(f"a frame must be (H, W) or (H, W, 3), got {frame.shape}")
    return frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _row_runs(dark: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diff(np.concatenate([[0], dark.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _chains(starts: np.ndarray, ends: np.ndarray, max_width: float) -> list[tuple[int, int]]:
    """Every chain of dark runs as ``(first run index, last run index + 1)``."""
    widths = ends - starts
    ok = (widths >= 2) & (widths <= max_width)
    out = []
    i, n = 0, len(starts)
    while i < n:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and ok[j + 1]:
            wa, wb = widths[j], widths[j + 1]
            spacing = (starts[j + 1] + ends[j + 1] - starts[j] - ends[j]) / 2
            if max(wa, wb) > 2 * min(wa, wb) or spacing > MAX_SPACING_PER_WIDTH * (wa + wb) / 2:
                break
            j += 1
        out.append((i, j + 1))
        i = j + 1
    return out


def _local_levels(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's running max and min along its row over the local window."""
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    size = max(int(grey.shape[1] * LOCAL_WINDOW_FRACTION) | 1, 9)
    return maximum_filter1d(grey, size, axis=1), minimum_filter1d(grey, size, axis=1)


def _bright_mask(grey: np.ndarray) -> np.ndarray:
    """Pixels in the upper half of a local range of at least MIN_CONTRAST: the
    counterpart of :func:`_dark_mask` (a flat background is neither)."""
    hi, lo = _local_levels(grey)
    return (grey >= (hi + lo) / 2) & (hi - lo >= MIN_CONTRAST)


def _dark_mask(grey: np.ndarray) -> np.ndarray:
    hi, lo = _local_levels(grey)
    dark = (grey < (hi + lo) / 2) & (hi - lo >= MIN_CONTRAST)
    # drop 1-pixel dark lines (the gaps between white keys): keep runs >= 2 wide
    wide = dark[:, 1:] & dark[:, :-1]
    keep = np.zeros_like(dark)
    keep[:, 1:] |= wide
    keep[:, :-1] |= wide
    return keep


def frames_grey(frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """The per-pixel median grey of one frame (H, W[, 3]) or of several (a list or an
    (N, H, W, 3) array); ``ValueError`` when there are none."""
    frames = [np.asarray(f) for f in frames] if not isinstance(frames, np.ndarray) or frames.ndim == 4 \
        else [frames]
    if not frames:
        raise ValueError("no frames")
    return median_grey(frames)


def detect_keyboard(frames: Sequence[np.ndarray] | np.ndarray) -> KeyboardBox:
    """The keyboard box in ``frames`` (see the module docstring)."""
    grey = frames_grey(frames)
    h, w = grey.shape
    dark = _dark_mask(grey)
    max_width = max(w / 40.0, 4.0)
    chains = np.zeros(h, dtype=int)
    extent = np.zeros((h, 2))
    for y in range(h):
        starts, ends = _row_runs(dark[y])
        best = max(_chains(starts, ends, max_width), key=lambda c: c[1] - c[0], default=(0, 0))
        chains[y] = best[1] - best[0]
        if chains[y]:
            extent[y] = starts[best[0]], ends[best[1] - 1]
    good = chains >= MIN_CHAIN_KEYS
    # bands: runs of good rows (gaps of up to 2 rows bridged) whose longest chain
    # keeps its horizontal extent (a grating beside the keys is another band)
    jump = BAND_EXTENT_JUMP * w
    bands, y = [], 0
    while y < h:
        if not good[y]:
            y += 1
            continue
        y_end, gap, k = y, 0, y + 1
        while k < h and gap <= 2:
            if good[k]:
                if np.abs(extent[k] - extent[y_end]).max() > jump:
                    break
                y_end, gap = k, 0
            else:
                gap += 1
            k += 1
        if y_end + 1 - y >= 2:
            bands.append((int(chains[y:y_end + 1].sum()), y, y_end + 1))
        y = y_end + 1
    if not bands:
        return KeyboardBox(None, 0.0)
    found = [_box_from_band(grey, dark, y0, y1, max_width)
             for _, y0, y1 in sorted(bands, reverse=True)[:MAX_BANDS]]
    return _best(found)


def _best(found: list[KeyboardBox]) -> KeyboardBox:
    """The candidate with the most black keys among those within
    :data:`CONFIDENCE_TIE` (relative) of the most confident: readings of one
    keyboard from different rows or seeds whose patterns are all piano-like
    (the confidence stops counting keys at 24) differ in how much of it they
    saw; ties go to the confidence."""
    top = max(kb.confidence for kb in found)
    close = [kb for kb in found if kb.confidence >= (1.0 - CONFIDENCE_TIE) * top]
    return max(close, key=lambda kb: (kb.black_keys, kb.confidence))


def _pattern_segments(centres: np.ndarray) -> list[np.ndarray]:
    """Parts of a chain of key centres that follow the piano's grouping: every
    5 consecutive spacings hold exactly two long ones (> 1.3 x the shortest)."""
    spacing = np.diff(centres)
    marked = np.zeros(len(centres), dtype=bool)
    for i in range(len(spacing) - 4):
        window = spacing[i:i + 5]
        if int(np.sum(window > 1.3 * window.min())) == 2 and window.max() < 2.6 * window.min():
            marked[i:i + 6] = True
    starts, ends = _row_runs(marked)
    return [centres[i:j] for i, j in zip(starts, ends) if j - i >= 6]


def _white_width(centres: np.ndarray) -> float:
    """Black keys five apart are an octave (7 white keys) apart."""
    return float(np.median(centres[5:] - centres[:-5])) / 7.0


def _box_from_band(grey: np.ndarray, dark: np.ndarray, yb0: int, yb1: int,
                   max_width: float) -> KeyboardBox:
    """Steps 4-6 of the method for one candidate black-key band: chains of
    black-key columns are cut to the parts that follow the piano's grouping,
    parts separated by an occlusion (a hand) are joined, and the most confident
    box wins."""
    black_cols = dark[yb0:yb1].mean(axis=0) >= 0.5
    starts, ends = _row_runs(black_cols)
    starts, ends = _flanked_by_white(grey[yb0:yb1], starts, ends)
    centres_all = (starts + ends - 1) / 2.0
    segments = []
    for i0, i1 in _chains(starts, ends, max_width):
        segments.extend(_pattern_segments(centres_all[i0:i1]))
    segments.sort(key=len, reverse=True)
    widths = ends - starts
    found = [KeyboardBox(None, 0.0)]
    for seed in segments[:3]:
        white_w = _white_width(seed)
        seed_idx = np.searchsorted(centres_all, seed)
        key_w = float(np.median(widths[seed_idx]))
        similar = (widths >= 0.6 * key_w) & (widths <= 1.6 * key_w)
        keys = _extend_on_lattice(centres_all, similar, list(seed_idx), white_w)
        found.append(_box_from_keys(grey, dark, yb0, yb1, centres_all[keys], white_w))
    return _best(found)


def _flanked_by_white(band: np.ndarray, starts: np.ndarray, ends: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The dark runs ``[start, end)`` of a band's black-key columns that are
    black keys by their sides: a black key lies between two white keys, so
    along the rows, within half its width past each end, there is a column
    bright (:func:`_bright_mask`) in at least half of the band's rows. A dark
    background beside the keyboard's end is dark only as far as the local
    window reaches the white keys; past that it is flat, neither dark nor
    bright, so that strip (which can be as wide as a black key) is dropped.
    A run at the frame's edge is judged by its inner side only."""
    bright = _bright_mask(band).mean(axis=0) >= 0.5
    w = len(bright)
    keep = np.zeros(len(starts), dtype=bool)
    for i, (a, b) in enumerate(zip(starts, ends)):
        reach = max(2, int(b - a) // 2)
        left = a == 0 or bright[max(a - reach, 0):a].any()
        right = b == w or bright[b:b + reach].any()
        keep[i] = left and right
    return starts[keep], ends[keep]


def _extend_on_lattice(centres: np.ndarray, similar: np.ndarray, keys: list[int],
                       white_w: float) -> list[int]:
    """Walk outward from a seed of keys: the next dark run is a key when it lies
    within :data:`LATTICE_TOLERANCE` white keys of an octave repeat (7 white
    keys) of one of the keys in the last two octaves and at most
    :data:`MAX_BRIDGE_WHITE_KEYS` past the last key (a hand may hide some);
    runs of another width (a partly hidden key) are skipped, and the walk stops
    at the :data:`MAX_LATTICE_MISSES`-th run in a row of the keys' width that is
    off the lattice (a grating next to the keyboard), or where the keys would
    span more than :data:`PIANO_BLACK_SPAN` + :data:`SPAN_SLACK` white keys
    (wider than a piano)."""
    period = 7.0 * white_w
    keys = sorted(keys)
    for direction in (1, -1):
        accepted = list(keys)
        misses = 0
        j = (accepted[-1] + 1) if direction > 0 else (accepted[0] - 1)
        while 0 <= j < len(centres):
            last = accepted[-1] if direction > 0 else accepted[0]
            if abs(centres[j] - centres[last]) > MAX_BRIDGE_WHITE_KEYS * white_w:
                break
            refs = [centres[k] for k in accepted if abs(centres[k] - centres[last]) <= 2.2 * period]
            phase = [abs((centres[j] - r + period / 2) % period - period / 2) for r in refs]
            if not similar[j]:  # part of a key under a hand, or a smudge: skip it
                j += direction
                continue
            if min(phase) > LATTICE_TOLERANCE * white_w:
                misses += 1
                if misses >= MAX_LATTICE_MISSES:
                    break
                j += direction
                continue
            misses = 0
            if direction > 0:
                accepted.append(j)
            else:
                accepted.insert(0, j)
            j += direction
        keys = accepted
    # wider than a piano (A#0 to A#7 is 49 white keys; SPAN_SLACK more): keep the piano-wide
    # window holding the most keys
    span = (PIANO_BLACK_SPAN + SPAN_SLACK) * white_w
    xs = centres[keys]
    ends = np.searchsorted(xs, xs + span, side="right")
    best = int(np.argmax(ends - np.arange(len(xs))))
    return keys[best:ends[best]]


def _box_from_keys(grey, dark, yb0, yb1, centres, white_w, walked: int = 0) -> KeyboardBox:
    h, w = grey.shape
    walked = max(walked, len(centres))  # runs the walk took as keys
    band = (yb0, yb1)
    if len(centres) < 2:
        return KeyboardBox(None, 0.0)
    first, last = float(centres[0]), float(centres[-1])
    # the black-key rows are those where most chosen key centres are dark
    cols = np.round(centres).astype(int)
    key_dark = dark[:, cols].mean(axis=1) >= 0.5
    if not key_dark[yb0:yb1].any():
        return KeyboardBox(None, 0.0)
    yb0 = yb0 + int(np.argmax(key_dark[yb0:yb1]))
    while yb0 > 0 and key_dark[yb0 - 1]:
        yb0 -= 1
    yb1 = yb0
    while yb1 < h and key_dark[yb1]:
        yb1 += 1
    # bright threshold from the band's levels
    band_grey = grey[yb0:yb1, int(first):int(last) + 1]
    band_dark = dark[yb0:yb1, int(first):int(last) + 1]
    dark_level = float(np.median(band_grey[band_dark])) if band_dark.any() else 0.0
    bright_level = float(np.median(band_grey[~band_dark])) if (~band_dark).any() else 255.0
    bright_thr = (dark_level + bright_level) / 2
    # bottom of the white keys
    black_len = yb1 - yb0
    xs0, xs1 = int(first), int(last) + 1
    y1 = yb1
    limit = min(h, yb1 + black_len)
    while y1 < limit and np.mean(grey[y1, xs0:xs1] > bright_thr) >= WHITE_ROW_FRACTION:
        y1 += 1
    if y1 == yb1:
        return KeyboardBox(None, 0.0)
    white_rows = grey[yb1:y1] > bright_thr
    col_bright = white_rows.mean(axis=0)
    # a black key lies on two white keys: the columns under its middle half
    # are bright in the white-key rows. An outermost "key" that is not (a dark
    # background at the keyboard's end, cut by the frame's edge) is dropped and
    # the box found again from the others; the share of the walk's runs that
    # are keys scales the confidence (a walk led off the keys is less sure).
    half = max(int(round(0.25 * white_w)), 1)

    def on_white(c: float) -> bool:
        a, b = max(int(round(c)) - half, 0), min(int(round(c)) + half + 1, w)
        return b > a and float(np.mean(col_bright[a:b] >= 0.3)) > 0.5

    lo, hi = 0, len(centres)
    while lo < hi and not on_white(centres[lo]):
        lo += 1
    while hi > lo and not on_white(centres[hi - 1]):
        hi -= 1
    if (lo, hi) != (0, len(centres)):
        return _box_from_keys(grey, dark, band[0], band[1], centres[lo:hi], white_w, walked)
    spacing = np.diff(centres)
    ratio = spacing / white_w
    ratio = ratio[ratio <= 2.3]  # bridged gaps are neither pattern nor noise
    single, double = (ratio >= 0.9) & (ratio < 1.45), (ratio >= 1.45) & (ratio <= 2.3)
    # an octave has three short spacings and two long ones: a grating has one kind
    grouping = min(1.0, float(np.mean(double)) / 0.3) if np.mean(double) <= 0.6 else 0.0
    pattern = float(np.mean(single | double)) * grouping
    white_fill = float(np.mean(col_bright[xs0:xs1] > 0.5))

    def edge(start: float, direction: int, default: float) -> tuple[float, bool]:
        """Pixel boundary of the keyboard beyond the outermost black key centre,
        and whether it is the keyboard's end (not the default width)."""
        need = max(int(round(0.3 * white_w)), 2)
        run = run_start = 0
        for step in range(1, int(2.5 * white_w) + need + 2):
            xi = int(round(start)) + direction * step
            if 0 <= xi < w and col_bright[xi] >= 0.3:
                run = 0
                continue
            if run == 0:
                run_start = step
            run += 1
            if run >= need:
                if 0.5 * white_w <= run_start <= 2.5 * white_w:
                    # an end inside the frame, not the frame's (or a fill's) edge
                    at = int(round(start)) + direction * run_start
                    inside = 0 <= at < w and grey[yb1:y1, at].mean() > 8.0
                    return at + (1 if direction < 0 else 0), inside
                break
        return start + direction * default * white_w, False

    left, left_found = edge(first, -1, 1.15)
    right, right_found = edge(last, 1, 1.85)
    box = (int(max(round(left), 0)), int(yb0), int(min(round(right), w)), int(y1))
    confidence = (pattern * min(1.0, len(centres) / FULL_PIANO_KEYS) * white_fill
                  * len(centres) / walked)
    return KeyboardBox(box, round(float(confidence), 4), len(centres), round(white_w, 3),
                       tuple(round(float(c), 2) for c in centres), (left_found, right_found))


def keyboard_score(frames: Sequence[np.ndarray] | np.ndarray) -> float:
    """The detector's confidence that the frames show a top-down keyboard."""
    return detect_keyboard(frames).confidence


def iou(a: Sequence[int], b: Sequence[int]) -> float:
    """Intersection over union of two boxes ``(x0, y0, x1, y1)``, ends exclusive."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
