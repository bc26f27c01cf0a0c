"""Audio-to-video offset from per-key presses matched to notes of the same pitch.

Plain functions over arrays, on the keyboard **strip**: the keyboard cropped
and turned upright, low keys on the left, black keys above the white keys'
fronts (:func:`copdata.qa.orient.strip_matrix`). Sign convention as in
:mod:`copdata.qa.offset`: the offset is **positive when the audio is late**.

* **Keys** (:mod:`copdata.qa.keys`): each MIDI pitch's column in the strip,
  from the detector's black-key lattice.
* **Press signal** (:func:`press_signal`): per frame ``i >= 1`` and key, the
  mean absolute grey change ``|g_i - g_{i-1}|`` over the key's column (inner
  70 % of its width; a white key over the strip's height, a black key above
  the black keys' ends), minus the median over all keys in that frame (what
  every key shares: lighting, compression). Row 0 is 0.
* **Frame timing**: frame ``i`` shows time ``t0 + i/fps`` (a camera's
  snapshot); change row ``i`` holds what happened between ``(i-1)/fps`` and
  ``i/fps``, so it is placed at time ``(i - 0.5)/fps``: a key going down at
  time ``tau`` shows on average at change row ``tau*fps + 0.5``. Rendered
  video (copdata's renderer, the roll) shows in frame ``i`` the keys down
  during ``[i/fps, (i+1)/fps)``: a press shows one frame earlier, and
  ``frame_timing="rendered"`` places change row ``i`` at ``(i + 0.5)/fps``.
* **Curves** (:func:`note_curves`): each key's signal is high-passed (minus a
  :data:`DETREND_FRAMES`-frame moving average) and divided by its standard
  deviation; each note of a visible pitch gives the curve
  ``c_n(L) = z_key(t_n*fps + 0.5 - L)`` (linear interpolation) over lags ``L``
  of ``-max_lag..max_lag`` frames in steps of :data:`LAG_STEP_FRAMES`. Their
  mean over notes is the sum of the per-key cross-correlations of the press
  signal with each key's onset train.
* **Source offset** (:func:`source_key_offset`): the mean curve's peak
  (refined by a parabola) minus the key-travel lead ``lead_s`` (the key is
  down before the hammer sounds; :data:`KEY_LEAD_S`). ``half_width_s``: half
  the 95 % bootstrap interval of the peak (notes drawn with replacement);
  ``second_peak``: the best value more than :data:`EXCLUSION_FRAMES` frames
  from the peak over the peak's; ``matched``: notes whose own press signal at
  the peak is above :data:`MATCH_Z`. The same curves at the notes' **ends**
  (the key coming up) give a second estimate from other events
  (``release_offset_s``). Confident only when the half-width is at most
  :data:`MAX_HALF_WIDTH_FRAMES` (half a frame), ``second_peak <=
  MAX_SECOND_PEAK``, at least :data:`MIN_NOTES` notes count and (when releases are given) the release estimate is within
  :data:`MAX_PRESS_RELEASE_FRAMES` frames of the press estimate: a finger
  resting on a key hides its press and shows only its lift, which a press
  curve alone takes for the press.
* **Octave from the audio** (:func:`octave_key_offset`): a partial keyboard
  (:func:`copdata.qa.keys.key_map`) names its keys' pitch classes but not
  their octave; the estimate is made for every candidate octave and the one
  whose mean curve has the highest peak wins. Confident only when that
  estimate is, and the second-best octave's peak is at most
  :data:`MAX_OCTAVE_MARGIN` of the best's (``octave_margin``).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from .keys import MIN_PARTIAL_BLACK, KeyColumns, find_key_map
from .offset import _peak  # the one parabola refinement of a curve's maximum

KEY_INNER = 0.7  # share of a key's width measured (its middle)
DETREND_FRAMES = 9
LAG_STEP_FRAMES = 0.1
EXCLUSION_FRAMES = 3
MATCH_Z = 1.0
KEY_LEAD_S = 0.0  # not measured (docs/qa.md): the AI-Pianist MIDI's origin is trimmed
BOOTSTRAP = 200
MAX_SECOND_PEAK = 0.8
MIN_NOTES = 30
# the bootstrap interval's half-width must be at most this many frames: half a
# frame, so that an estimate and the truth are within one frame (at one frame,
# 11 of 123 confident half-video sources of the AI-Pianist TrainSet were
# 1.0-1.16 frames from the other half's estimate; docs/qa.md)
MAX_HALF_WIDTH_FRAMES = 0.5
# presses and releases must tell the same offset (chosen on the development
# videos: 1.4 frames where a look at the frames agrees, >= 3.8 where the
# finger resting on a key makes its lift the only visible event)
MAX_PRESS_RELEASE_FRAMES = 2.0
# one shift per source: its 10 s segments (a clip's length) that have a clear
# peak of their own must agree with it (a webcam dropping frames mid-video
# moves the offset of what follows: AI-Pianist TrainSet 9/0/2, 1/3, 9/0/1)
SEGMENT_S = 10.0
MIN_SEGMENT_NOTES = 10
MAX_SEGMENT_FRAMES = 2.0
# a partial keyboard's octave: the best octave's peak must clearly beat the
# second best's (the same bar as the second peak of the lag curve)
MAX_OCTAVE_MARGIN = 0.8
# where change row i lies, in frames from i, per frame-timing convention
ROW_TIME = {"camera": -0.5, "rendered": 0.5}


def _grey(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 3:
        return frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return frame.astype(np.float32)


def _regions(columns: KeyColumns) -> list[tuple[int, int, int, int]]:
    out = []
    for a, b, black in zip(columns.x0, columns.x1, columns.black):
        margin = (b - a) * (1 - KEY_INNER) / 2
        x0 = max(int(math.ceil(a + margin)), 0)
        x1 = min(int(math.floor(b - margin)) + 1, columns.width)
        if x1 <= x0:
            x0 = min(max(int(round((a + b) / 2)), 0), columns.width - 1)
            x1 = x0 + 1
        y1 = max(columns.black_bottom, 1) if black else columns.height
        out.append((x0, x1, 0, y1))
    return out


class PressStream:
    """:func:`press_signal` one frame at a time (bounded memory): call with
    each frame in order (RGB or grey, already the strip: ``columns``' size),
    then :attr:`press` is the ``(T, K)`` signal so far."""

    def __init__(self, columns: KeyColumns):
        self.columns = columns
        self.regions = _regions(columns)
        self.rows: list[np.ndarray] = []
        self.prev: np.ndarray | None = None

    def __call__(self, frame: np.ndarray) -> None:
        columns = self.columns
        grey = _grey(frame)
        if grey.shape != (columns.height, columns.width):
            raise ValueError(f"frame of {grey.shape[::-1]} pixels, the key columns are for "
                             f"{columns.width}x{columns.height}")
        if self.prev is None:
            self.rows.append(np.zeros(len(self.regions)))
        else:
            change = np.abs(grey - self.prev)
            # column sums over the two row bands (all rows / above the black keys' ends)
            full = np.concatenate([[0.0], np.cumsum(change.sum(axis=0), dtype=np.float64)])
            top = np.concatenate([[0.0], np.cumsum(change[:columns.black_bottom].sum(axis=0),
                                                    dtype=np.float64)])
            row = np.empty(len(self.regions))
            for k, (x0, x1, _, y1) in enumerate(self.regions):
                sums = top if columns.black[k] else full
                row[k] = (sums[x1] - sums[x0]) / ((x1 - x0) * y1)
            self.rows.append(row - np.median(row))
        self.prev = grey

    @property
    def press(self) -> np.ndarray:
        return np.array(self.rows).reshape(len(self.rows), len(self.regions))


def press_signal(frames: Iterable[np.ndarray], columns: KeyColumns) -> np.ndarray:
    """Per frame and key (``columns.pitches``) the press signal of the module
    docstring: ``(T, K)``; row 0 is 0."""
    stream = PressStream(columns)
    for frame in frames:
        stream(frame)
    return stream.press


def _standardise(press: np.ndarray) -> np.ndarray:
    """High-pass (minus a moving average) and divide each key's column by its
    standard deviation (0 for a flat key)."""
    x = np.asarray(press, float)
    if x.shape[0] > DETREND_FRAMES:
        from scipy.ndimage import uniform_filter1d

        x = x - uniform_filter1d(x, DETREND_FRAMES, axis=0, mode="nearest")
    x = x - x.mean(axis=0)
    sd = x.std(axis=0)
    return np.divide(x, sd, out=np.zeros_like(x), where=sd > 0)


def note_curves(press: np.ndarray, columns: KeyColumns, notes: Sequence, fps: float,
                t0: float = 0.0, max_lag_s: float = 1.0, at: str = "start",
                frame_timing: str = "camera", partial: bool = False, with_times: bool = False):
    """``(curves, lags)``: one curve per note whose key has a column and whose
    lag window lies inside the frames (frame 0 shows time ``t0``; notes in the
    same clock as ``t0``), ``curves[n, j] = z(t_n*fps + 0.5 - lags[j])``;
    ``lags`` in frames, ``-max_lag..max_lag`` in steps of
    :data:`LAG_STEP_FRAMES`. ``t_n`` is the note's start (``at="start"``:
    the key goes down) or its end (``"end"``: the key comes up).
    ``frame_timing``: ``"camera"`` (frame ``i`` is a snapshot at ``i/fps``:
    change row ``i`` at ``(i - 0.5)/fps``) or ``"rendered"`` (frame ``i``
    shows the keys down during ``[i/fps, (i+1)/fps)``, the roll's and
    copdata's renderer's convention: change row ``i`` at ``(i + 0.5)/fps``).
    ``partial``: keep a note whose window reaches outside the frames, NaN
    there (for a wide search; :func:`source_key_offset` needs whole windows).
    ``with_times``: also return the kept notes' times (``(curves, lags,
    times)``), for :func:`source_key_offset`'s segment check."""
    if at not in ("start", "end"):
        raise ValueError(f"at must be 'start' or 'end', got {at!r}")
    if frame_timing not in ROW_TIME:
        raise ValueError(f"frame_timing must be one of {sorted(ROW_TIME)}, got {frame_timing!r}")
    z = _standardise(press)
    max_lag = math.ceil(max_lag_s * fps)
    steps = int(round(max_lag / LAG_STEP_FRAMES))
    lags = np.arange(-steps, steps + 1) * LAG_STEP_FRAMES
    index = {p: k for k, p in enumerate(columns.pitches)}
    grid = np.arange(z.shape[0])
    out, times = [], []
    for note in notes:
        k = index.get(int(note.pitch))
        if k is None:
            continue
        u = ((note.start if at == "start" else note.end) - t0) * fps - ROW_TIME[frame_timing] - lags
        outside = (u < 1) | (u > z.shape[0] - 1)
        if outside.any() and (not partial or outside.all()):
            continue
        curve = np.interp(u, grid, z[:, k])
        curve[outside] = np.nan
        out.append(curve)
        times.append(note.start if at == "start" else note.end)
    curves = np.array(out).reshape(len(out), len(lags))
    return (curves, lags, np.array(times, float)) if with_times else (curves, lags)


def source_key_offset(curves: np.ndarray, lags: np.ndarray, fps: float, lead_s: float = KEY_LEAD_S,
                      boot: int = BOOTSTRAP, seed: int = 0,
                      release_curves: np.ndarray | None = None,
                      times: np.ndarray | None = None) -> dict:
    """One offset for a source from all its notes' curves (:func:`note_curves`;
    several clips' curves may be stacked): see the module docstring.
    ``release_curves`` (the same notes' ends, ``at="end"``): their peak
    (``release_offset_s``) must lie within :data:`MAX_PRESS_RELEASE_FRAMES`
    of the presses' for a confident estimate (``press_release_frames``).
    ``times`` (the notes' times, :func:`note_curves` ``with_times``): the
    notes are cut into :data:`SEGMENT_S` segments; a segment with at least
    :data:`MIN_SEGMENT_NOTES` notes whose own mean curve has a clear peak
    (second peak at most :data:`MAX_SECOND_PEAK` of it) must peak within
    :data:`MAX_SEGMENT_FRAMES` of the source (``segments``: ``[start_s,
    notes, offset_s]`` of the clear ones; ``segments_agree``)."""
    curves = np.asarray(curves, float)
    out = {"offset_s": 0.0, "half_width_s": None, "second_peak": None, "peak": None,
           "notes": int(len(curves)), "matched": 0, "confident": False, "method": "keys"}
    if len(curves) < 2:
        return out
    step = float(lags[1] - lags[0])
    mean = curves.mean(axis=0)
    pos, best = _peak(mean)
    lag = float(lags[0]) + pos * step
    top = float(mean[best])
    far = np.abs(lags - lags[best]) > EXCLUSION_FRAMES
    second = float(mean[far].max()) / top if far.any() and top > 0 else 1.0
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(curves), np.full(len(curves), 1.0 / len(curves)), size=boot)
    draws = np.array([_peak(m)[0] for m in weights @ curves / len(curves)])
    lo, hi = np.percentile(draws, [2.5, 97.5])
    half = (hi - lo) / 2 * step / fps
    matched = int(np.sum(curves[:, best] > MATCH_Z))
    out.update({"offset_s": round(lag / fps - lead_s, 4), "half_width_s": round(float(half), 4),
                "second_peak": round(second, 4), "peak": round(top, 4), "matched": matched})
    agree = True
    if release_curves is not None:
        agree = False
        release = np.asarray(release_curves, float)
        if len(release) >= 2:
            rel_lag = float(lags[0]) + _peak(release.mean(axis=0))[0] * step
            gap = abs(rel_lag - lag)
            out.update({"release_offset_s": round(rel_lag / fps - lead_s, 4),
                        "press_release_frames": round(gap, 2)})
            agree = gap <= MAX_PRESS_RELEASE_FRAMES
    if times is not None:
        segments = _segments(curves, lags, np.asarray(times, float), fps, lead_s)
        out["segments"] = segments
        out["segments_agree"] = all(abs(o + lead_s - lag / fps) * fps <= MAX_SEGMENT_FRAMES
                                    for _, _, o in segments)
        agree = agree and out["segments_agree"]
    out["confident"] = bool(top > 0 and half <= MAX_HALF_WIDTH_FRAMES / fps and second <= MAX_SECOND_PEAK
                            and len(curves) >= MIN_NOTES and agree)
    return out


def _segments(curves: np.ndarray, lags: np.ndarray, times: np.ndarray, fps: float,
              lead_s: float) -> list[list[float]]:
    """``[start_s, notes, offset_s]`` of every :data:`SEGMENT_S` segment of
    the notes with at least :data:`MIN_SEGMENT_NOTES` notes and a clear peak."""
    if len(times) != len(curves):
        raise ValueError(f"{len(times)} times for {len(curves)} curves")
    step = float(lags[1] - lags[0])
    out = []
    if not len(times):
        return out
    index = np.floor((times - times.min()) / SEGMENT_S).astype(int)
    for seg in np.unique(index):
        mine = curves[index == seg]
        if len(mine) < MIN_SEGMENT_NOTES:
            continue
        mean = mine.mean(axis=0)
        pos, best = _peak(mean)
        far = np.abs(lags - lags[best]) > EXCLUSION_FRAMES
        if mean[best] <= 0 or (far.any() and mean[far].max() > MAX_SECOND_PEAK * mean[best]):
            continue
        out.append([round(float(times.min() + seg * SEGMENT_S), 2), int(len(mine)),
                    round((float(lags[0]) + pos * step) / fps - lead_s, 4)])
    return out


def octave_key_offset(press: np.ndarray, columns: KeyColumns, shifts: Sequence[int], notes: Sequence,
                      fps: float, t0: float = 0.0, max_lag_s: float = 1.0,
                      lead_s: float = KEY_LEAD_S, frame_timing: str = "camera",
                      estimate=None) -> dict:
    """The source offset when the key map's octave is unknown: ``columns``
    (:func:`copdata.qa.keys.key_map`) moved by each of ``shifts`` semitones,
    the estimate of :func:`source_key_offset` (presses, releases, segments)
    for each, the one with the highest ``peak`` kept. ``octave_shift``: its
    shift; ``octave_margin``: the second-best shift's peak over the best's
    (0 when only one octave fits and it has a positive peak); ``octaves``:
    ``[shift, peak, offset_s]`` of each. Confident only when the chosen
    estimate is and ``octave_margin <= MAX_OCTAVE_MARGIN``. ``estimate``
    (optional): a callable ``(press, columns, notes) -> dict`` used instead
    of the estimate above (e.g. a wider search)."""
    def default(press, cols, notes):
        curves, lags, times = note_curves(press, cols, notes, fps, t0, max_lag_s,
                                          frame_timing=frame_timing, with_times=True)
        release, _ = note_curves(press, cols, notes, fps, t0, max_lag_s, at="end",
                                 frame_timing=frame_timing)
        return source_key_offset(curves, lags, fps, lead_s, release_curves=release, times=times)

    estimate = estimate or default
    results = [(int(s), estimate(press, columns.shifted(int(s)), notes)) for s in shifts]
    if not results:
        raise ValueError("no octave to try")
    peaks = [r["peak"] if r.get("peak") is not None else -math.inf for _, r in results]
    order = np.argsort(peaks)[::-1]
    shift, best = results[int(order[0])]
    top = peaks[int(order[0])]
    runner = peaks[int(order[1])] if len(order) > 1 else 0.0
    margin = (max(runner, 0.0) / top) if top > 0 else 1.0
    out = {**best, "octave_shift": shift, "octave_margin": round(float(margin), 4),
           "octaves": [[s, None if r.get("peak") is None else r["peak"], r["offset_s"]]
                       for s, r in results]}
    out["confident"] = bool(best["confident"] and margin <= MAX_OCTAVE_MARGIN)
    return out


def key_offset(frames: Iterable[np.ndarray], notes: Sequence, fps: float, t0: float = 0.0,
               columns: KeyColumns | None = None, max_lag_s: float = 1.0,
               lead_s: float = KEY_LEAD_S, frame_timing: str = "camera") -> dict:
    """The source offset of a strip video (frames from ``t0``, every frame
    listed) against ``notes``: :func:`copdata.qa.keys.find_key_map` (unless
    ``columns``), :func:`press_signal`, :func:`note_curves`,
    :func:`source_key_offset` (:func:`octave_key_offset` for a partial
    keyboard).
    Not confident, with ``"reason"``, when no key map is found."""
    frames = list(frames)
    shifts = None
    if columns is None:
        step = max(len(frames) // 15, 1)
        found = find_key_map(frames[::step])
        if found is not None:
            columns, shifts = found
    if columns is None:
        return {"offset_s": 0.0, "half_width_s": None, "second_peak": None, "notes": 0,
                "matched": 0, "confident": False, "method": "keys",
                "reason": "no key map (no black-key lattice of 36, or of at least "
                          f"{MIN_PARTIAL_BLACK} consecutive, black keys)"}
    press = press_signal(frames, columns)
    if shifts is not None:
        return octave_key_offset(press, columns, shifts, notes, fps, t0, max_lag_s, lead_s,
                                 frame_timing)
    curves, lags, times = note_curves(press, columns, notes, fps, t0, max_lag_s,
                                      frame_timing=frame_timing, with_times=True)
    release, _ = note_curves(press, columns, notes, fps, t0, max_lag_s, at="end",
                             frame_timing=frame_timing)
    return source_key_offset(curves, lags, fps, lead_s, release_curves=release, times=times)
