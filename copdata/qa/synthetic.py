"""Non-piano sounds made offline, for checking the QA signals.

What a YouTube crawl brings besides solo piano, made in numpy (no apt package,
no download): speech-like sound, noise, a drum kit, and mixtures. Used by the
tests and by ``benchmarks/bench_qa.py`` (which also uses ``espeak-ng`` speech
when that program is installed).

* :func:`speech_like`: a glottal pulse train (Rosenberg-like pulses) whose f0
  glides through an intonation contour (90-260 Hz), filtered by three formant
  resonators that move between vowels every syllable (150-300 ms), with a 4-5 Hz
  syllable envelope, fricative noise bursts and short pauses.
* :func:`noise`: white, pink or brown noise, or ``rustle`` (bursts of
  band-passed noise, like paper or a crowd).
* :func:`drums`: kick (a 150 -> 50 Hz sine sweep), snare (noise plus a 190 Hz
  tone) and hi-hat (high-passed noise) on a jittered 8th-note pattern.
"""

from __future__ import annotations

import numpy as np

# (F1, F2, F3) Hz of a few vowels
_VOWELS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
           (570, 840, 2410), (660, 1720, 2410), (440, 1020, 2240)]


def _resonator(x: np.ndarray, freq: np.ndarray, bandwidth: float, sample_rate: int) -> np.ndarray:
    """Two-pole resonator with a time-varying centre frequency (per sample)."""
    r = np.exp(-np.pi * bandwidth / sample_rate)
    c1 = 2 * r * np.cos(2 * np.pi * freq / sample_rate)
    c2 = -r * r
    y = np.zeros_like(x)
    y1 = y2 = 0.0
    gain = 1 - r
    for i in range(len(x)):  # small loops: a few seconds of audio in tests
        v = gain * x[i] + c1[i] * y1 + c2 * y2
        y[i] = v
        y2, y1 = y1, v
    return y


def _highpass(x: np.ndarray, cutoff: float, sample_rate: int) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(4, cutoff, "highpass", fs=sample_rate, output="sos"), x)


def _bandpass(x: np.ndarray, lo: float, hi: float, sample_rate: int) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(2, [lo, hi], "bandpass", fs=sample_rate, output="sos"), x)


def _normalize(x: np.ndarray, rms: float = 0.1) -> np.ndarray:
    level = float(np.sqrt(np.mean(x ** 2)))
    return (x * (rms / level) if level > 0 else x).astype(np.float32)


def speech_like(seconds: float, sample_rate: int = 22050, seed: int = 0) -> np.ndarray:
    """Speech-like sound (see the module docstring), RMS 0.1."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    # intonation: a slow random walk plus phrase-final falls
    knots = np.linspace(0, seconds, max(int(seconds * 3), 2))
    f0 = np.interp(t, knots, rng.uniform(100, 240, len(knots)))
    f0 *= 1 + 0.03 * np.sin(2 * np.pi * 5.5 * t)
    phase = np.cumsum(f0 / sample_rate)
    frac = phase % 1.0
    pulse = np.where(frac < 0.6, np.sin(np.pi * frac / 0.6) ** 2, 0.0)
    glottal = np.diff(pulse, prepend=0.0)
    # syllables: vowel per syllable, voiced or fricative, with pauses
    bounds = [0.0]
    while bounds[-1] < seconds:
        bounds.append(bounds[-1] + rng.uniform(0.15, 0.3))
    formants = np.zeros((n, 3))
    envelope = np.zeros(n)
    fricative = np.zeros(n)
    prev = _VOWELS[0]
    for a, b in zip(bounds[:-1], bounds[1:]):
        i0, i1 = int(a * sample_rate), min(int(b * sample_rate), n)
        if i1 <= i0:
            continue
        vowel = _VOWELS[rng.integers(len(_VOWELS))]
        ramp = np.linspace(0, 1, i1 - i0)[:, None]
        formants[i0:i1] = np.asarray(prev) * (1 - np.minimum(ramp * 4, 1)) + np.asarray(vowel) * np.minimum(ramp * 4, 1)
        prev = vowel
        kind = rng.random()
        shape = np.sin(np.pi * np.linspace(0, 1, i1 - i0)) ** 0.7
        if kind < 0.12:
            continue  # pause
        if kind < 0.35:
            fricative[i0:i1] = shape
        else:
            envelope[i0:i1] = shape
    voiced = sum(_resonator(glottal, formants[:, k], bw, sample_rate) * g
                 for k, (bw, g) in enumerate(((80, 1.0), (100, 0.6), (140, 0.3))))
    hiss = _highpass(rng.standard_normal(n), 2500, sample_rate) * fricative
    voiced = voiced * envelope
    out = voiced / (np.sqrt(np.mean(voiced ** 2)) + 1e-12) + 0.3 * hiss / (np.sqrt(np.mean(hiss ** 2)) + 1e-12)
    return _normalize(out)


def noise(seconds: float, sample_rate: int = 22050, color: str = "white", seed: int = 0) -> np.ndarray:
    """``white``, ``pink``, ``brown`` or ``rustle`` noise, RMS 0.1."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    white = rng.standard_normal(n)
    if color == "white":
        out = white
    elif color in ("pink", "brown"):
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / sample_rate)
        f[0] = f[1]
        spec /= np.sqrt(f) if color == "pink" else f
        out = np.fft.irfft(spec, n)
    elif color == "rustle":
        env = np.zeros(n)
        for _ in range(int(seconds * 12)):
            i0 = rng.integers(n)
            length = int(rng.uniform(0.02, 0.2) * sample_rate)
            seg = env[i0:i0 + length]
            env[i0:i0 + length] = np.maximum(seg, rng.uniform(0.2, 1) * np.exp(-np.linspace(0, 4, len(seg))))
        out = _bandpass(white, 800, 6000, sample_rate) * env
    else:
        raise ValueError(f"unknown noise color {color!r}")
    return _normalize(out)


def drums(seconds: float, sample_rate: int = 22050, bpm: float = 110.0, seed: int = 0) -> np.ndarray:
    """A drum kit pattern (see the module docstring), RMS 0.1."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    out = np.zeros(n)
    eighth = 30.0 / bpm

    def add(at: float, sound: np.ndarray) -> None:
        i0 = int(at * sample_rate)
        if i0 >= n:
            return
        seg = sound[:n - i0]
        out[i0:i0 + len(seg)] += seg

    def kick() -> np.ndarray:
        tt = np.arange(int(0.35 * sample_rate)) / sample_rate
        freq = 50 + 100 * np.exp(-tt / 0.04)
        return np.sin(2 * np.pi * np.cumsum(freq) / sample_rate) * np.exp(-tt / 0.12)

    def snare() -> np.ndarray:
        tt = np.arange(int(0.25 * sample_rate)) / sample_rate
        return (0.7 * rng.standard_normal(len(tt)) * np.exp(-tt / 0.06)
                + 0.5 * np.sin(2 * np.pi * 190 * tt) * np.exp(-tt / 0.05))

    def hihat() -> np.ndarray:
        tt = np.arange(int(0.08 * sample_rate)) / sample_rate
        return 0.4 * _highpass(rng.standard_normal(len(tt)), 6000, sample_rate) * np.exp(-tt / 0.02)

    for k in range(int(seconds / eighth) + 1):
        at = k * eighth + rng.normal(0, 0.004)
        at = max(at, 0.0)
        add(at, hihat())
        if k % 4 == 0 or (k % 8 == 5 and rng.random() < 0.5):
            add(at, kick())
        if k % 4 == 2:
            add(at, snare())
    return _normalize(out)


def mix(a: np.ndarray, b: np.ndarray, b_db: float = 0.0) -> np.ndarray:
    """``a`` plus ``b`` scaled to ``b_db`` dB relative to ``a``'s RMS."""
    n = min(len(a), len(b))
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    ra, rb = np.sqrt(np.mean(a ** 2)), np.sqrt(np.mean(b ** 2))
    scale = ra / rb * 10 ** (b_db / 20) if rb > 0 else 0.0
    return (a + scale * b).astype(np.float32)


class KeyboardScene:
    """A cluttered frame with copdata's rendered keyboard whose keys fill
    ``box`` (x0, y0, x1, y1; exclusive ends; the felt strip lies just above
    the box) and ``hands`` skin-coloured hands (palm and forearm) over the keys.
    :meth:`frame` presses keys (``active``: 88 velocities)."""

    def __init__(self, frame_size: tuple[int, int], box: tuple[int, int, int, int], seed: int = 0,
                 hands: int = 2):
        from ..render.keyboard import FELT_FRACTION, KeyboardRenderer

        rng = np.random.default_rng(seed)
        width, height = frame_size
        x0, y0, x1, y1 = box
        keys_h = y1 - y0
        total_h = int(round(keys_h / (1 - FELT_FRACTION)))
        total_h += total_h % 2
        self.renderer = KeyboardRenderer((x1 - x0) + (x1 - x0) % 2, total_h)
        felt = max(int(round(total_h * FELT_FRACTION)), 1)
        yy, xx = np.mgrid[0:height, 0:width]
        frame = np.stack([60 + 80 * xx / width, 70 + 60 * yy / height, 90 + 0 * xx], -1)
        for _ in range(25):
            w_, h_ = rng.integers(20, width // 4), rng.integers(20, height // 4)
            cx, cy = rng.integers(0, width - w_), rng.integers(0, height - h_)
            frame[cy:cy + h_, cx:cx + w_] = rng.integers(0, 256, 3)
        sx, sy = rng.integers(0, width // 2), rng.integers(0, height // 2)
        stripe = ((np.arange(width // 3) // 6) % 2 * 200 + 20)[None, :, None]
        frame[sy:sy + height // 6, sx:sx + width // 3] = stripe[:, : max(0, min(width // 3, width - sx))]
        frame += rng.normal(0, 6, frame.shape)
        frame[y1:min(y1 + max(keys_h // 5, 2), height), x0:x1] = (35, 25, 20)  # piano body
        self.background = frame
        self.top = y0 - felt
        self.box = box
        self.hands = np.zeros((height, width), dtype=bool)
        for _ in range(hands):
            cx = rng.uniform(x0 + 0.2 * (x1 - x0), x1 - 0.2 * (x1 - x0))
            cy = rng.uniform(y0 + 0.2 * keys_h, y1 - 0.1 * keys_h)
            rx, ry = 0.045 * (x1 - x0), 0.4 * keys_h
            self.hands |= ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
            self.hands |= (np.abs(xx - cx) < rx * 0.6) & (yy > cy) & (yy < cy + 3 * keys_h)

    def frame(self, active: np.ndarray | None = None) -> np.ndarray:
        x0, _, x1, y1 = self.box
        frame = self.background.copy()
        picture = self.renderer.frame(np.zeros(88, np.uint8) if active is None else active)[:, : x1 - x0]
        ty0 = max(self.top, 0)
        frame[ty0:y1, x0:x1] = picture[ty0 - self.top: y1 - self.top]
        frame[self.hands] = (224, 172, 140)
        return np.clip(frame, 0, 255).astype(np.uint8)


def keyboard_scene(frame_size: tuple[int, int], box: tuple[int, int, int, int], seed: int = 0,
                   hands: int = 2, active: np.ndarray | None = None) -> np.ndarray:
    """One frame of :class:`KeyboardScene`."""
    return KeyboardScene(frame_size, box, seed, hands).frame(active)


def write_scene_video(path, frames, audio: np.ndarray, sample_rate: int, fps: float = 25.0) -> None:
    """Mux RGB ``frames`` (H.264, constant ``fps``) and mono ``audio`` (AAC) into
    one file, both starting at t = 0: a recorded performance for tests."""
    from fractions import Fraction

    import av

    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": "18", "preset": "ultrafast"}
        sound = container.add_stream("aac", rate=sample_rate, layout="mono")
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        samples = np.asarray(audio, dtype=np.float32)
        for i in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, i:i + 1024], format="flt", layout="mono")
            chunk.sample_rate = sample_rate
            chunk.pts = i
            for packet in sound.encode(chunk):
                container.mux(packet)
        for packet in sound.encode(None):
            container.mux(packet)


def delay(audio: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    """``audio`` made ``seconds`` late (negative: early), same length, zero-filled."""
    n = int(round(seconds * sample_rate))
    audio = np.asarray(audio, dtype=np.float32)
    if n >= 0:
        return np.concatenate([np.zeros(n, np.float32), audio])[:len(audio)]
    return np.concatenate([audio[-n:], np.zeros(-n, np.float32)])


def performance_scene(notes, seconds: float, fps: float, frame_size: tuple[int, int],
                      box: tuple[int, int, int, int], seed: int = 0):
    """Frames of a recorded top-down performance: :func:`keyboard_scene` (clutter
    and two static hands) whose keys light up with ``notes``."""
    from ..roll import render_roll

    count = int(round(seconds * fps))
    roll = render_roll(notes, count, fps)
    scene = KeyboardScene(frame_size, box, seed)
    for i in range(count):
        yield scene.frame(roll[i])
