"""Audio-to-video offset from key-press motion against audio onsets.

Plain functions over arrays. Sign convention: ``av_offset_s`` is **positive when
the audio is late** (a note sounds after its key is pressed in the picture).

* **Video**: :func:`motion_signal` is, for each frame ``i >= 1``, the mean
  absolute grey-level change ``|g_i - g_{i-1}|`` over the (keyboard) frame,
  computed on frames shrunk by :data:`MOTION_DOWNSCALE` (frame 0 gets 0). A key
  press (and a hand striking it) changes the picture in the frame whose
  interval ``[i/fps, (i+1)/fps)`` holds the onset.
* **Audio**: :func:`onset_signal` is librosa's onset strength (spectral flux of
  a log-mel spectrogram, hop :data:`ONSET_HOP_SECONDS`), taken as its maximum
  over each video frame's interval, so an onset at time ``t`` lands in frame
  ``floor(t * fps)`` like the picture's change.
* **Offset**: both signals are high-pass filtered (minus a
  :data:`DETREND_FRAMES`-frame moving average) and z-scored, and their
  normalised cross-correlation ``c(L) = corr(v[i], a[i + L])`` over the
  overlapping frames is computed for lags ``|L| <= max_offset_s * fps``. The
  peak lag, refined by a parabola through its neighbours, divided by the fps,
  is the offset.
* **Confidence**: ``c(peak) - max c(L)`` over lags more than
  :data:`CONFIDENCE_EXCLUSION_FRAMES` frames from the peak, clipped to
  [0, 1]: 0 when another lag explains the signals as well (no motion, a
  static picture, periodic music), larger when one lag stands out.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

MOTION_DOWNSCALE = 4
ONSET_HOP_SECONDS = 0.005
DETREND_FRAMES = 9
CONFIDENCE_EXCLUSION_FRAMES = 3
DEFAULT_MAX_OFFSET_S = 1.0
DEFAULT_BANDS = 8
RELEASE_WEIGHT = 0.5
MIN_MOTION = 0.02  # grey levels per frame, mean over the clip
# A source's offset (source_offset) is confident only with all of these
SOURCE_BOOTSTRAP = 200
SOURCE_MAX_SECOND_PEAK = 0.8
SOURCE_MIN_AGREE = 0.5
SOURCE_MIN_CLIPS = 3
SOURCE_MIN_NOTES = 30


def shrink_grey(frame: np.ndarray, factor: int = MOTION_DOWNSCALE, stacked: bool = False) -> np.ndarray:
    """Grey ``float32`` frame, averaged over ``factor x factor`` blocks
    (``stacked``: ``frame`` is a stack of frames, shrunk each)."""
    frame = np.asarray(frame)
    colour = frame.ndim == (4 if stacked else 3)
    grey = frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) \
        if colour else frame.astype(np.float32)
    h, w = (grey.shape[-2] // factor) * factor, (grey.shape[-1] // factor) * factor
    if h == 0 or w == 0:
        return grey
    import cv2  # INTER_AREA at a whole factor is the block mean, several times faster

    size = (w // factor, h // factor)
    if stacked:
        return np.stack([cv2.resize(g[:h, :w], size, interpolation=cv2.INTER_AREA) for g in grey]) \
            .reshape(grey.shape[:-2] + (h // factor, w // factor))
    return cv2.resize(np.ascontiguousarray(grey[:h, :w]), size, interpolation=cv2.INTER_AREA) \
        .reshape(h // factor, w // factor)


def _band_means(change: np.ndarray, bands: int) -> np.ndarray:
    """Mean of each of ``bands`` equal-width column strips of ``change``
    (rows: frames): ``(rows, bands)``, 0 for an empty strip."""
    edges = np.linspace(0, change.shape[1], bands + 1).astype(int)
    return np.stack([change[:, a:b].mean(axis=1) if b > a else np.zeros(change.shape[0], change.dtype)
                     for a, b in zip(edges[:-1], edges[1:])], axis=1)


def motion_signal(frames: Iterable[np.ndarray], bands: int = 1) -> np.ndarray:
    """Mean absolute change between consecutive shrunk grey frames in each of
    ``bands`` vertical strips of equal width: ``(T, bands)``; row 0 is 0, and
    so is a row whose frame differs in size from the one before."""
    frames = [np.asarray(f) for f in frames]
    out = np.zeros((len(frames), bands))
    if len(frames) < 2:
        return out
    if len({f.shape for f in frames}) == 1:  # one shape: all frames at once
        grey = shrink_grey(np.stack(frames), stacked=True)
        change = np.abs(grey[1:] - grey[:-1]).mean(axis=1)  # (T - 1, W)
        out[1:] = _band_means(change, bands)
        return out
    prev = None
    for i, frame in enumerate(frames):
        grey = shrink_grey(frame)
        if prev is not None and prev.shape == grey.shape:
            out[i] = _band_means(np.abs(grey - prev).mean(axis=0)[None], bands)[0]
        prev = grey
    return out


def key_band(pitch: int, bands: int) -> int:
    """Strip of a top-down 88-key keyboard (A0 left) where ``pitch`` lies:
    the key's position in white-key widths over 52, times ``bands``."""
    pitch = min(max(int(pitch), 21), 108)
    whites = sum(1 for p in range(21, pitch) if p % 12 not in (1, 3, 6, 8, 10))
    position = whites + (0.0 if pitch % 12 not in (1, 3, 6, 8, 10) else -0.5) + 0.5
    return min(int(position / 52.0 * bands), bands - 1)


def note_onset_signal(notes: Sequence, fps: float, first_frame: int, num_frames: int,
                      bands: int = 1) -> np.ndarray:
    """Key events per frame ``first_frame + j`` (frame ``i`` covers
    ``[i/fps, (i+1)/fps)``) and keyboard strip: the velocity of every note
    starting plus :data:`RELEASE_WEIGHT` times the velocity of every note
    ending (a released key moves too), each shared linearly between the two
    frames whose centres surround it, so an offset of a fraction of a frame
    moves the signal smoothly: ``(num_frames, bands)``."""
    out = np.zeros((int(num_frames), bands))
    for note in notes:
        band = key_band(note.pitch, bands)
        for time, weight in ((note.start, note.velocity), (note.end, RELEASE_WEIGHT * note.velocity)):
            # soft binning: an event at frame position p (its frame's centre is
            # an integer) is shared linearly between the two nearest frames
            position = time * fps - 0.5 - first_frame
            j = int(np.floor(position))
            frac = position - j
            for index, share in ((j, 1.0 - frac), (j + 1, frac)):
                if 0 <= index < num_frames:
                    out[index, band] += weight * share
    return out


def onset_signal(audio: np.ndarray, sample_rate: int, fps: float, num_frames: int) -> np.ndarray:
    """Onset strength per video frame (max over the frame's interval)."""
    import librosa

    audio = np.asarray(audio, dtype=np.float32)
    hop = max(int(round(ONSET_HOP_SECONDS * sample_rate)), 1)
    strength = librosa.onset.onset_strength(y=audio, sr=int(sample_rate), hop_length=hop)
    times = np.arange(len(strength)) * hop / sample_rate
    index = np.floor(times * fps + 1e-9).astype(int)
    out = np.zeros(int(num_frames))
    ok = (index >= 0) & (index < num_frames)
    np.maximum.at(out, index[ok], strength[ok])
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    """High-pass (minus a moving average) and z-score each column."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] > DETREND_FRAMES:
        kernel = np.ones(DETREND_FRAMES) / DETREND_FRAMES
        pad = DETREND_FRAMES // 2
        smooth = np.stack([np.convolve(np.pad(col, pad, mode="edge"), kernel, mode="valid")
                           for col in x.T], axis=1)
        x = x - smooth
    x = x - x.mean(axis=0)
    sd = x.std()
    return x / sd if sd > 0 else np.zeros_like(x)


def estimate_offset(motion: np.ndarray, onsets: np.ndarray, fps: float,
                    max_offset_s: float = DEFAULT_MAX_OFFSET_S) -> tuple[float, float]:
    """``(av_offset_s, confidence)`` from video motion ``(T, B)`` and audio-side
    onsets ``(T + 2M, B)`` (``M = ceil(max_offset_s * fps)``; row ``j`` is video
    frame ``j - M``); see the module docstring. ``(0.0, 0.0)`` when either
    signal is flat, or the picture moves less than :data:`MIN_MOTION` grey
    levels per frame on average (a still picture)."""
    motion = np.asarray(motion, float).reshape(len(motion), -1)
    onsets = np.asarray(onsets, float).reshape(len(onsets), -1)
    max_lag = int(np.ceil(max_offset_s * fps))
    n = motion.shape[0]
    if n < 4 or fps <= 0 or onsets.shape[0] != n + 2 * max_lag or onsets.shape[1] != motion.shape[1]:
        raise ValueError(f"onsets must have {n + 2 * max_lag} rows and {motion.shape[1]} columns, "
                         f"got {onsets.shape}")
    if float(motion.mean()) < MIN_MOTION:  # a still picture: nothing to align
        return 0.0, 0.0
    corr = offset_curve(motion, onsets, max_lag)
    if corr is None:
        return 0.0, 0.0
    lags = np.arange(-max_lag, max_lag + 1)
    position, best = _peak(corr)
    far = np.abs(lags - lags[best]) > CONFIDENCE_EXCLUSION_FRAMES
    runner_up = float(corr[far].max()) if far.any() else 0.0
    confidence = float(np.clip(corr[best] - max(runner_up, 0.0), 0.0, 1.0))
    return round((position - max_lag) / fps, 4), round(confidence, 4)


def offset_curve(motion: np.ndarray, onsets: np.ndarray, max_lag: int) -> np.ndarray | None:
    """The normalised cross-correlation of motion and onsets at lags
    ``-max_lag..max_lag`` frames (see :func:`estimate_offset`), or None when a
    signal is flat."""
    motion = np.asarray(motion, float).reshape(len(motion), -1)
    onsets = np.asarray(onsets, float).reshape(len(onsets), -1)
    n = motion.shape[0]
    v, a = _normalise(motion), _normalise(onsets)
    if not v.any() or not a.any():
        return None
    corr = np.empty(2 * max_lag + 1)
    for k, lag in enumerate(range(-max_lag, max_lag + 1)):
        window = a[max_lag + lag: max_lag + lag + n]
        denom = np.sqrt(np.sum(v ** 2) * np.sum(window ** 2))
        corr[k] = float(np.sum(v * window) / denom) if denom > 0 else 0.0
    return corr


def _peak(corr: np.ndarray) -> tuple[float, int]:
    """Sub-frame position of the curve's maximum (parabola) and its index."""
    best = int(np.argmax(corr))
    shift = 0.0
    if 0 < best < len(corr) - 1:
        left, mid, right = corr[best - 1], corr[best], corr[best + 1]
        curvature = left - 2 * mid + right
        if curvature < 0:
            shift = float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
    return best + shift, best


def source_offset(curves: Sequence[np.ndarray], fps: float, notes: int,
                  boot: int = SOURCE_BOOTSTRAP, seed: int = 0) -> dict:
    """One audio-to-video offset for a whole source from its clips' curves
    (:func:`offset_curve`, same lag range, ``max_lag = (len - 1) / 2``;
    ``ValueError`` for curves of even length).

    The curves are averaged (every note of the source counts) and the peak
    refined by a parabola: ``offset_s``. ``half_width_s``: half the width of
    the 95 % bootstrap interval of that peak (clips drawn with replacement,
    :data:`SOURCE_BOOTSTRAP` draws). ``second_peak``: the best correlation more
    than :data:`CONFIDENCE_EXCLUSION_FRAMES` frames from the peak, over the
    peak's. ``agree``: share of clips whose own peak is within one frame of the
    source's. ``confident`` when half_width <= one frame, second_peak <=
    :data:`SOURCE_MAX_SECOND_PEAK`, agree >= :data:`SOURCE_MIN_AGREE`, at least
    :data:`SOURCE_MIN_CLIPS` clips and :data:`SOURCE_MIN_NOTES` notes: only
    then may a build shift the source's audio (one shift per source)."""
    curves = [np.asarray(c, float) for c in curves if c is not None]
    out = {"offset_s": 0.0, "half_width_s": None, "second_peak": None, "agree": 0.0,
           "clips": len(curves), "notes": int(notes), "confident": False}
    if not curves:
        return out
    stack = np.stack(curves)
    if stack.shape[1] % 2 == 0:
        raise ValueError(f"offset curves have an odd length, 2 * max_lag + 1; got {stack.shape[1]}")
    max_lag = (stack.shape[1] - 1) // 2
    pooled = stack.mean(axis=0)
    pos, best = _peak(pooled)
    lags = np.arange(-max_lag, max_lag + 1)
    far = np.abs(lags - lags[best]) > CONFIDENCE_EXCLUSION_FRAMES
    top = float(pooled[best])
    second = float(pooled[far].max()) / top if far.any() and top > 0 else 1.0
    rng = np.random.default_rng(seed)
    draws = [_peak(stack[rng.integers(0, len(stack), len(stack))].mean(axis=0))[0]
             for _ in range(boot)]
    lo, hi = np.percentile(draws, [2.5, 97.5])
    half = (hi - lo) / 2 / fps
    own = np.array([_peak(c)[0] for c in stack])
    agree = float(np.mean(np.abs(own - pos) <= 1.0))
    out.update({"offset_s": round((pos - max_lag) / fps, 4), "half_width_s": round(float(half), 4),
                "second_peak": round(second, 4), "agree": round(agree, 4)})
    out["confident"] = bool(half <= 1.0 / fps and second <= SOURCE_MAX_SECOND_PEAK
                            and agree >= SOURCE_MIN_AGREE and len(curves) >= SOURCE_MIN_CLIPS
                            and notes >= SOURCE_MIN_NOTES and top > 0)
    return out


def av_offset(frames: Iterable[np.ndarray], notes: Sequence, fps: float, t0: float = 0.0,
              max_offset_s: float = DEFAULT_MAX_OFFSET_S, bands: int = DEFAULT_BANDS) -> tuple[float, float]:
    """``(av_offset_s, confidence)`` of a clip whose frame 0 shows time ``t0``
    of the source, from its keyboard-region frames and the notes of the audio
    (transcribed or ground truth, source time; notes up to ``max_offset_s``
    outside the clip are used)."""
    motion = motion_signal(frames, bands)
    max_lag = int(np.ceil(max_offset_s * fps))
    first = int(round(t0 * fps)) - max_lag
    onsets = note_onset_signal(notes, fps, first, motion.shape[0] + 2 * max_lag, bands)
    return estimate_offset(motion, onsets, fps, max_offset_s)
