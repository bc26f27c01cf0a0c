"""A keyboard seen from either long side and tilted: its view, quad and key range.

:func:`detect_keyboard_view` finds a keyboard whatever way the camera looks at
it: from the player's side (low keys on the left, black keys above the white
keys' fronts), from the far side (the picture turned 180 degrees: low keys on
the right, black keys below the fronts) and tilted by up to
:data:`MAX_TILT_DEG` degrees either way. It runs the upright detector
(:func:`copdata.qa.keyboard.detect_keyboard`) on the frames' median turned into
candidate **views**:

1. The median grey frame is shrunk to at most :data:`WORK_WIDTH` pixels wide.
2. Tilt candidates: the frame's edge map (the magnitude of the vertical grey
   gradient) is turned by every angle in ``[-20, 20]`` degrees in steps of
   :data:`TILT_STEP_DEG`; a keyboard's long straight edges (the white keys'
   fronts, the black keys' ends, the fallboard) make the row sums of the edge
   map peaky at its tilt. The angles of the :data:`TILT_CANDIDATES` highest
   peaks (and 0) are candidates.
3. For every candidate tilt, both the tilt alone and the tilt plus 180 degrees
   (the far side) are tried: the detector only accepts black keys *above* a band
   of white keys, so only the right one finds a keyboard. The most confident
   view wins.

A view is the source frame turned clockwise (on screen) by ``rotation_deg``
about its centre onto a canvas that holds all of it (:func:`view_matrix`). In
the view the keyboard is upright and its low keys are on the left, the way
every clip is stored; ``--auto-crop`` crops the view (:func:`warp_to_strip`).

Angles: ``angle_deg`` is the tilt of the keyboard's long axis on screen,
counter-clockwise positive (a keyboard whose right end is higher has a positive
angle); ``flipped`` is true when the camera is on the far side.
``rotation_deg = angle_deg + (180 if flipped else 0)``.

Key range: the black keys' spacings (two short, one long, two short, ... in
white keys) name them: a pair of black keys with long spacings on both sides is
C#/D#, so every visible key gets its pitch class, and the keys between the
box's edges are counted (``keys_visible``, black and white). The octave is only
known for a whole keyboard: when both ends of the keys are inside the frame and
the white keys number 52 (88 keys, A0-C8), 45 (76 keys, E1-G7), 36 (61 keys,
C2-C7) or 29 (49 keys, C2-C6) with the pitch classes of that layout, the range
is given as MIDI numbers (``lowest_key``, ``highest_key``); otherwise those are
``None`` and ``partial`` is true. Which way the keys run is taken from the side
the camera is on (``direction_from: "view"``; a mirrored picture of a partial
keyboard is not recognised), except on a whole 88-key keyboard, whose ends say
it (``"ends"``): with all 36 black keys, A#0 is followed by a long spacing
(two white keys, to C#1) and A#7 preceded by a short one (from G#7); else the
keyboard ends about one white key before its first black key (A0) and two
after its last (B7, C8). The other way round the picture is ``mirrored`` and
the strip is turned left to right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .keyboard import KeyboardBox, detect_keyboard, frames_grey

MAX_TILT_DEG = 20.0
TILT_STEP_DEG = 0.5
TILT_CANDIDATES = 3
REFINE_RANGE_DEG = 1.5
REFINE_STEP_DEG = 0.1
WORK_WIDTH = 960
# Steps claim "a top-down view of a piano keyboard" only for at least this many
# visible keys (black and white): four octaves, a 49-key keyboard
MIN_CLAIM_KEYS = 49

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# white keys of an octave from C, in semitones
_WHITE_SEMITONES = (0, 2, 4, 5, 7, 9, 11)
# black keys by their position in white keys from C#: C# 0, D# 1, F# 3, G# 4, A# 5
_BLACK_SLOTS = {0: 1, 1: 3, 3: 6, 4: 8, 5: 10}
FULL_BLACK_KEYS = 36  # an 88-key piano: A#0 .. A#7
LONG_SPACING = 1.45  # white keys: black keys this far apart have a white key between
# whole keyboards: white keys -> (lowest MIDI pitch, highest)
STANDARD_KEYBOARDS = {52: (21, 108), 45: (28, 103), 36: (36, 96), 29: (36, 84)}


@dataclass(frozen=True)
class KeyboardView:
    """A keyboard found in some view of the frames (see the module docstring).

    ``box`` is the axis-aligned bounding box of ``quad`` in source pixels
    (x1/y1 exclusive; for an upright keyboard, the crop box); ``strip_box`` the
    keyboard's box in the view (``rotation_deg``) in source-pixel scale;
    ``quad`` its four corners in source pixels, in the order low-back,
    high-back, high-front, low-front."""

    box: tuple[int, int, int, int] | None
    confidence: float
    angle_deg: float = 0.0
    flipped: bool = False
    strip_box: tuple[int, int, int, int] | None = None
    quad: tuple[tuple[float, float], ...] = ()
    frame_size: tuple[int, int] = (0, 0)
    black_keys: int = 0
    white_key_width: float = 0.0
    keys_visible: int = 0
    lowest_name: str | None = None
    highest_name: str | None = None
    lowest_key: int | None = None
    highest_key: int | None = None
    partial: bool = True
    direction_from: str = "view"
    mirrored: bool = False

    @property
    def rotation_deg(self) -> float:
        return self.angle_deg + (180.0 if self.flipped else 0.0)

    @property
    def upright(self) -> bool:
        """No turn needed: the plain crop ``box`` is the keyboard strip."""
        return self.angle_deg == 0.0 and not self.flipped and not self.mirrored

    def to_dict(self) -> dict:
        return {"box": list(self.box) if self.box else None, "confidence": self.confidence,
                "angle_deg": self.angle_deg, "flipped": self.flipped,
                "strip_box": list(self.strip_box) if self.strip_box else None,
                "quad": [[round(x, 1), round(y, 1)] for x, y in self.quad] or None,
                "keys_visible": self.keys_visible, "lowest": self.lowest_name,
                "highest": self.highest_name, "lowest_key": self.lowest_key,
                "highest_key": self.highest_key, "partial": self.partial,
                "direction_from": self.direction_from, "mirrored": self.mirrored}


def view_matrix(width: int, height: int, rotation_deg: float) -> tuple[np.ndarray, int, int]:
    """The 2x3 affine map from source pixel coordinates to the view turned
    clockwise on screen by ``rotation_deg`` about the frame's centre, and the
    view's size (the canvas holds the whole turned frame)."""
    a = math.radians(rotation_deg)
    c, s = math.cos(a), math.sin(a)
    if abs(c) < 1e-12:
        c = 0.0
    if abs(s) < 1e-12:
        s = 0.0
    out_w = int(math.ceil(abs(width * c) + abs(height * s) - 1e-6))
    out_h = int(math.ceil(abs(width * s) + abs(height * c) - 1e-6))
    # pixel centres: source (x, y) about its centre -> turned clockwise on screen
    # (y down): x' = c x - s y, y' = s x + c y
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    ox, oy = (out_w - 1) / 2.0, (out_h - 1) / 2.0
    m = np.array([[c, -s, ox - c * cx + s * cy],
                  [s, c, oy - s * cx - c * cy]], dtype=np.float64)
    return m, out_w, out_h


def _invert(m: np.ndarray) -> np.ndarray:
    a = m[:, :2]
    inv = np.linalg.inv(a)
    return np.concatenate([inv, -inv @ m[:, 2:]], axis=1)


def to_view(image: np.ndarray, rotation_deg: float) -> np.ndarray:
    """``image`` (grey or RGB) turned into the view ``rotation_deg`` (black fill)."""
    import cv2

    h, w = image.shape[:2]
    turns = rotation_deg % 360.0
    if turns == 0.0:
        return image
    if turns == 180.0:
        return np.ascontiguousarray(image[::-1, ::-1])
    m, out_w, out_h = view_matrix(w, h, rotation_deg)
    return cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def strip_matrix(frame_size: tuple[int, int], rotation_deg: float,
                 strip_box: Sequence[int], mirrored: bool = False) -> tuple[np.ndarray, int, int]:
    """The affine map from source pixels straight to the keyboard strip (the
    view cropped to ``strip_box``, turned left to right when ``mirrored``) and
    the strip's size."""
    m, _, _ = view_matrix(frame_size[0], frame_size[1], rotation_deg)
    x0, y0, x1, y1 = strip_box
    m = m.copy()
    m[0, 2] -= x0
    m[1, 2] -= y0
    if mirrored:
        m[0] = -m[0]
        m[0, 2] += (x1 - x0) - 1
    return m, int(x1 - x0), int(y1 - y0)


def warp_to_strip(frame: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One frame (RGB) as the keyboard strip: upright, low keys on the left."""
    import cv2

    return cv2.warpAffine(np.ascontiguousarray(frame), matrix, size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def tilt_candidates(grey: np.ndarray, count: int = TILT_CANDIDATES) -> list[float]:
    """Tilts (degrees, counter-clockwise on screen) at which the frame's
    horizontal-ish edges line up best (step 2 of the module docstring), and 0."""
    import cv2

    gy = np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
    gy = np.minimum(gy, np.percentile(gy, 99) + 1e-3)  # one hard edge must not rule
    angles = np.arange(-MAX_TILT_DEG, MAX_TILT_DEG + 1e-9, TILT_STEP_DEG)
    h, w = grey.shape
    scores = []
    for angle in angles:
        # undo a tilt of `angle`: turn clockwise by it
        m, out_w, out_h = view_matrix(w, h, float(angle))
        turned = cv2.warpAffine(gy, m, (out_w, out_h), flags=cv2.INTER_LINEAR)
        rows = turned.sum(axis=1)
        scores.append(float(np.sum(rows ** 2)) / max(float(rows.sum()) ** 2, 1e-9))
    scores = np.array(scores)
    peaks = [i for i in range(len(scores))
             if (i == 0 or scores[i] >= scores[i - 1]) and (i == len(scores) - 1 or scores[i] >= scores[i + 1])]
    peaks.sort(key=lambda i: scores[i], reverse=True)
    out = [0.0]
    for i in peaks:
        angle = float(angles[i])
        if 0 < i < len(scores) - 1:  # parabola through the peak
            denom = scores[i - 1] - 2 * scores[i] + scores[i + 1]
            if denom < 0:
                angle += TILT_STEP_DEG * 0.5 * (scores[i - 1] - scores[i + 1]) / denom
        if all(abs(angle - a) > 1.0 for a in out):
            out.append(round(angle, 2))
        if len(out) > count:
            break
    return out


def _key_range(found: KeyboardBox, box_x: tuple[float, float], whole: bool
               ) -> tuple[int, str | None, str | None, int | None, int | None, bool]:
    """Keys visible between ``box_x`` (view pixels, low keys left), the pitch
    names of the lowest and highest, their MIDI numbers on a whole standard
    keyboard, and whether the names were checked against such a layout."""
    centres = np.asarray(found.centres, dtype=float)
    w = found.white_key_width
    if len(centres) < 6 or w <= 0:
        return 0, None, None, None, None, False
    spacing = np.diff(centres) / w
    long_ = spacing >= LONG_SPACING
    # a C#/D# pair: short spacing with long ones (or an end) on both sides
    ref = None
    for i in range(len(spacing)):
        if long_[i]:
            continue
        before = i == 0 or long_[i - 1]
        after = i + 1 >= len(spacing) or long_[i + 1]
        inner = 0 < i and i + 1 < len(spacing)
        if before and after and inner:
            ref = centres[i]
            break
    if ref is None:  # no C#/D# pair seen: count the keys from the white keys' width
        return int(round((box_x[1] - box_x[0]) / w * 12 / 7)), None, None, None, None, False
    # white key j (from the C below the reference C#) spans [c0 + j w, c0 + (j+1) w)
    c0 = ref - w
    x0, x1 = box_x
    j_lo = int(math.floor((x0 - c0) / w + 0.5))
    j_hi = int(math.ceil((x1 - c0) / w - 0.5)) - 1
    if j_hi < j_lo:
        return 0, None, None, None, None, False

    def white_pitch(j: int) -> int:  # semitones from the reference C
        return 12 * (j // 7) + _WHITE_SEMITONES[j % 7]

    lo, hi = white_pitch(j_lo), white_pitch(j_hi)
    keys = hi - lo + 1
    lo_name, hi_name = PITCH_NAMES[lo % 12], PITCH_NAMES[hi % 12]
    whites = j_hi - j_lo + 1
    if whole and whites in STANDARD_KEYBOARDS:
        first, last = STANDARD_KEYBOARDS[whites]
        if PITCH_NAMES[first % 12] == lo_name and PITCH_NAMES[last % 12] == hi_name:
            return keys, lo_name, hi_name, first, last, True
    return keys, lo_name, hi_name, None, None, False


def _detect_in_view(grey: np.ndarray, rotation: float) -> tuple[KeyboardBox, tuple[int, int]]:
    view = to_view(grey, rotation)
    return detect_keyboard([view]), (view.shape[1], view.shape[0])


def detect_keyboard_view(frames: Sequence[np.ndarray] | np.ndarray,
                         tilts: Sequence[float] | None = None) -> KeyboardView:
    """The keyboard in ``frames`` from either long side, tilted up to
    :data:`MAX_TILT_DEG` (see the module docstring). ``tilts`` replaces the
    searched candidates (``[0.0]``: upright or far side only, no tilt search)."""
    grey = frames_grey(frames)
    src_h, src_w = grey.shape
    scale = 1.0
    if src_w > WORK_WIDTH:
        import cv2

        scale = WORK_WIDTH / src_w
        grey = cv2.resize(grey, (WORK_WIDTH, max(int(round(src_h * scale)), 1)),
                          interpolation=cv2.INTER_AREA)
    grey = grey.astype(np.float32)
    candidates = list(tilts) if tilts is not None else tilt_candidates(grey)
    best = None
    for tilt in candidates:
        for flipped in (False, True):
            rotation = float(tilt) + (180.0 if flipped else 0.0)
            found, view_size = _detect_in_view(grey, rotation)
            if found.box is not None and (best is None or found.confidence > best[0].confidence):
                best = (found, float(tilt), flipped, view_size)
    if best is None:
        return KeyboardView(None, 0.0, frame_size=(src_w, src_h))
    found, tilt, flipped, _ = best
    if tilts is None:
        refined = _refine_tilt(grey, tilt, flipped, found)
        if refined != tilt:
            again, _ = _detect_in_view(grey, refined + (180.0 if flipped else 0.0))
            if again.box is not None and again.confidence >= 0.9 * found.confidence:
                found, tilt = again, refined
    return _view_result(found, tilt, flipped, grey.shape, scale, (src_w, src_h))


def _refine_tilt(grey: np.ndarray, tilt: float, flipped: bool, found: KeyboardBox) -> float:
    """The tilt within +-:data:`REFINE_RANGE_DEG` of ``tilt`` at which the
    horizontal-ish edges *of the keyboard found* (its box, widened by half its
    height) line up best, to :data:`REFINE_STEP_DEG`."""
    import cv2

    rotation = tilt + (180.0 if flipped else 0.0)
    view = to_view(grey, rotation)
    x0, y0, x1, y1 = found.box
    pad = (y1 - y0) // 2
    region = view[max(y0 - pad, 0):y1 + pad, x0:x1]
    if region.shape[0] < 8 or region.shape[1] < 8:
        return tilt
    gy = np.abs(cv2.Sobel(np.ascontiguousarray(region), cv2.CV_32F, 0, 1, ksize=3))
    h, w = gy.shape
    best_score, best_delta = -1.0, 0.0
    for delta in np.arange(-REFINE_RANGE_DEG, REFINE_RANGE_DEG + 1e-9, REFINE_STEP_DEG):
        m, out_w, out_h = view_matrix(w, h, float(delta))
        rows = cv2.warpAffine(gy, m, (out_w, out_h), flags=cv2.INTER_LINEAR).sum(axis=1)
        score = float(np.sum(rows ** 2)) / max(float(rows.sum()) ** 2, 1e-9)
        if score > best_score + 1e-12:
            best_score, best_delta = score, float(delta)
    # the view is upside down when flipped: a further turn there is the same turn
    return round(tilt + best_delta, 2)


def _view_result(found: KeyboardBox, tilt: float, flipped: bool, work_shape, scale: float,
                 src_size: tuple[int, int]) -> KeyboardView:
    h, w = work_shape
    rotation = tilt + (180.0 if flipped else 0.0)
    m, _, _ = view_matrix(w, h, rotation)
    inv = _invert(m)
    x0, y0, x1, y1 = found.box
    corners_view = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)
    # pixel-edge coordinates -> centre coordinates and back around the map
    pts = (inv[:, :2] @ (corners_view - 0.5).T).T + inv[:, 2] + 0.5
    quad = pts / scale
    whole = all(found.ends_found)
    mirrored = False
    # both ends in the frame, about 52 white keys apart (black keys may be under hands)
    whole88 = whole and abs((x1 - x0) / found.white_key_width - 52) <= 1.5
    if whole88:
        mirrored = _mirrored_88(found, x0, x1)
    if mirrored:
        found = KeyboardBox(found.box, found.confidence, found.black_keys, found.white_key_width,
                            tuple(x0 + x1 - c for c in reversed(found.centres)), found.ends_found)
    keys, lo_name, hi_name, lo_key, hi_key, checked = _key_range(found, (x0, x1), whole)
    direction_from = "ends" if whole88 else "view"
    src_m, _, _ = view_matrix(src_size[0], src_size[1], rotation)
    sq = (src_m[:, :2] @ (quad - 0.5).T).T + src_m[:, 2] + 0.5
    strip = (int(math.floor(sq[:, 0].min() + 1e-6)), int(math.floor(sq[:, 1].min() + 1e-6)),
             int(math.ceil(sq[:, 0].max() - 1e-6)), int(math.ceil(sq[:, 1].max() - 1e-6)))
    bx0, by0 = max(int(math.floor(quad[:, 0].min())), 0), max(int(math.floor(quad[:, 1].min())), 0)
    bx1 = min(int(math.ceil(quad[:, 0].max())), src_size[0])
    by1 = min(int(math.ceil(quad[:, 1].max())), src_size[1])
    return KeyboardView(
        box=(bx0, by0, bx1, by1), confidence=found.confidence, angle_deg=round(tilt, 2),
        flipped=flipped, strip_box=strip,
        quad=tuple((round(float(x), 2), round(float(y), 2)) for x, y in quad),
        frame_size=src_size, black_keys=found.black_keys,
        white_key_width=round(found.white_key_width / scale, 3), keys_visible=keys,
        lowest_name=lo_name, highest_name=hi_name, lowest_key=lo_key, highest_key=hi_key,
        partial=not checked, direction_from=direction_from, mirrored=mirrored)


def _mirrored_88(found: KeyboardBox, x0: float, x1: float) -> bool:
    """Whether a whole 88-key keyboard's keys run right to left. With all 36
    black keys, by their spacings at the ends: A#0 is followed by a long
    spacing (to C#1, two white keys), A#7 preceded by a short one (from G#7):
    mirrored, the first spacing is short and the last long. A camera's
    perspective does not change which spacing is long. Otherwise by the
    margins: A#0 is about one white key from its end, A#7 about two."""
    w = found.white_key_width
    if found.black_keys == FULL_BLACK_KEYS:
        first, last = (np.diff(np.asarray(found.centres, float))[[0, -1]] / w) >= LONG_SPACING
        if first != last:
            return bool(last)
    left_margin = (float(found.centres[0]) - x0) / w
    right_margin = (x1 - float(found.centres[-1])) / w
    return left_margin > right_margin + 0.4


def quad_iou(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]],
             size: tuple[int, int] | None = None) -> float:
    """Intersection over union of two quadrilaterals (corner lists, pixel-edge
    coordinates), by filling both on a pixel grid 4x finer than ``size``."""
    from PIL import Image, ImageDraw

    a, b = np.asarray(a, float), np.asarray(b, float)
    allp = np.concatenate([a, b])
    lo = np.floor(allp.min(axis=0)) - 1
    hi = np.ceil(allp.max(axis=0)) + 1
    k = 4.0
    dims = (int((hi[0] - lo[0]) * k) + 1, int((hi[1] - lo[1]) * k) + 1)

    def mask(q):
        img = Image.new("1", dims, 0)
        ImageDraw.Draw(img).polygon([((x - lo[0]) * k, (y - lo[1]) * k) for x, y in q], fill=1)
        return np.asarray(img, dtype=bool)

    ma, mb = mask(a), mask(b)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 0.0
