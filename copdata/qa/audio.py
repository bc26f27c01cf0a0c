"""Audio quality signals of a clip: piano score, silence ratio, loudness.

Plain functions over arrays (mono float audio in [-1, 1] and its sample rate).
Every threshold is a named constant documented here and in ``docs/qa.md``.

piano_score
-----------
How much of the clip's sound is explained by its notes as a piano would play
them. For every STFT frame (window :data:`PIANO_FFT_SECONDS`, hop a quarter of
it, frequencies :data:`PIANO_MIN_HZ`..:data:`PIANO_MAX_HZ`) a mask marks the
bins a sounding note's partials may fall in: partial ``k`` of pitch ``p`` lies in
``[k f0 2^(-tol), k f0 sqrt(1 + B(p) k^2) 2^(+tol)]`` (``tol`` =
:data:`PARTIAL_TOLERANCE_CENTS`, at least one bin each side; ``B(p)`` a
piano-string inharmonicity rising from 1.3e-4 at A0 to 6e-3 at C8), for notes
sounding in the frame (from ``start`` to ``end + ``:data:`NOTE_TAIL_SECONDS`).
``f0`` is corrected by the clip's tuning (``librosa.estimate_tuning``), so a
piano tuned to A = 435 or 445 Hz is explained as well as one at 440.

``explained`` is the share of the clip's power that falls inside the mask, and
``chance`` the share inside the same mask detuned by a quarter tone up and down
(mean of the two). Sound made of stable piano partials at the transcribed
pitches is inside the mask and not inside the detuned one; noise, percussion and
speech (gliding pitch, formants, fricatives) are inside both about equally. So::

    piano_score = clip(explained - chance, 0, 1) * (1 - percussive)

where ``percussive`` is the share of power that harmonic-percussive separation
(:func:`percussive_share`) gives to percussion (drums under a piano are mostly
below the bins the masks can resolve, so they are counted this way). The score
is near 0.6-0.9 for solo piano, about 0 for noise and drums, and in between for
piano mixed with speech or drums in proportion to the piano's share. A clip
without notes scores 0. The notes are those of the clip's MIDI view (the
transcription for recorded sources, the ground truth for rendered ones).

silence_ratio
-------------
Share of the clip's :data:`SILENCE_BLOCK_SECONDS` blocks whose RMS is below
:data:`QA_SILENCE_DBFS` (an all-zero block counts as silent).

loudness_lufs
-------------
Integrated loudness per ITU-R BS.1770-4: K-weighting (a +4 dB high shelf at
1500 Hz and a 38 Hz high pass, RBJ biquads designed for the clip's sample
rate), 400 ms blocks with 75 % overlap, an absolute gate at -70 LUFS and a
relative gate 10 LU below the mean of the blocks that pass it. ``None`` when no
block passes the absolute gate (the clip is silence).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np

PIANO_FFT_SECONDS = 0.372  # 16384 samples at 44.1 kHz: ~2.7 Hz bins
RESOLVE_BINS = 3.0  # a partial counts where a quarter tone spans at least this many bins
PIANO_MIN_HZ = 25.0
PIANO_MAX_HZ = 8000.0
PARTIAL_TOLERANCE_CENTS = 25.0
DETUNE_CENTS = 50.0  # the "chance" mask is the note mask moved by a quarter tone
MAX_PARTIALS = 16
NOTE_TAIL_SECONDS = 0.25  # damper release and room sound after a note's end
SILENCE_BLOCK_SECONDS = 0.05
QA_SILENCE_DBFS = -60.0
HPSS_KERNEL = 31  # bins (21.5 Hz each): the percussive median, across frequency
HPSS_TIME_KERNEL = 15  # frames (23 ms hops): the harmonic median, across time (0.35 s)
HPSS_MARGIN = 2.0
HPSS_SAMPLE_RATE = 22050
LOUDNESS_BLOCK_SECONDS = 0.4
LOUDNESS_ABSOLUTE_GATE = -70.0
LOUDNESS_RELATIVE_GATE = -10.0


def _check(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (1-D), got shape {audio.shape}")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio has NaN or inf samples")
    return audio


def inharmonicity(pitch: int) -> float:
    """A piano string's inharmonicity coefficient ``B``: 1.3e-4 at A0 (21)
    rising geometrically to 6e-3 at C8 (108)."""
    return 1.3e-4 * (6e-3 / 1.3e-4) ** ((int(pitch) - 21) / 87.0)


def _power_spectrogram(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, float]:
    n_fft = 1 << int(round(math.log2(PIANO_FFT_SECONDS * sample_rate)))
    hop = n_fft // 4
    if len(audio) < n_fft:
        audio = np.pad(audio, (0, n_fft - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop]
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2  # (T, F)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    return spec, freqs, hop / sample_rate


def _note_mask(notes: Sequence, n_frames: int, frame_seconds: float, freqs: np.ndarray,
               tuning_semitones: float, detune_cents: float, n_fft_seconds: float) -> np.ndarray:
    mask = np.zeros((n_frames, len(freqs)), dtype=bool)
    bin_hz = freqs[1] - freqs[0]
    half = n_fft_seconds / 2
    for note in notes:
        # frame j spans [j * frame_seconds, j * frame_seconds + 2 * half): a note
        # sounding anywhere in the window is in the mask
        j0 = max(int(math.floor((note.start - 2 * half) / frame_seconds)) + 1, 0)
        j1 = min(int(math.ceil((note.end + NOTE_TAIL_SECONDS) / frame_seconds)), n_frames)
        if j1 <= j0:
            continue
        f0 = 440.0 * 2.0 ** ((note.pitch - 69 + tuning_semitones + detune_cents / 100.0) / 12.0)
        b = inharmonicity(note.pitch)
        lo_ratio = 2.0 ** (-PARTIAL_TOLERANCE_CENTS / 1200.0)
        hi_ratio = 2.0 ** (PARTIAL_TOLERANCE_CENTS / 1200.0)
        for k in range(1, MAX_PARTIALS + 1):
            lo = k * f0 * lo_ratio
            if lo > PIANO_MAX_HZ:
                break
            hi = k * f0 * math.sqrt(1.0 + b * k * k) * hi_ratio
            b0 = max(int(math.floor(min(lo, k * f0 - bin_hz) / bin_hz + 0.5)), 0)
            b1 = min(int(math.floor(max(hi, k * f0 + bin_hz) / bin_hz + 0.5)) + 1, len(freqs))
            mask[j0:j1, b0:b1] = True
    return mask


TUNING_FMAX = 4000.0  # librosa.piptrack's default fmax, which librosa.estimate_tuning uses


def estimate_tuning(magnitude: np.ndarray, sample_rate: int) -> float:
    """``librosa.estimate_tuning(S=magnitude, sr=sample_rate)`` of a magnitude
    spectrogram ``(bins, frames)`` whose FFT length is a power of two, computed
    on the bins it can use, with the same result to the bit.

    piptrack (under estimate_tuning) keeps peaks only below its ``fmax``
    (4 kHz) but works on every bin: at the QA stage's 16384-point FFT, 8193
    bins of which 1487 count (18 ms of a 4 s clip's ~30 ms of audio QA).
    Here librosa gets the bins of a shorter power-of-two FFT that still holds
    the first bin at or above ``fmax`` (a peak test, gradient and parabolic
    shift at a bin read only its two neighbours), at the sample rate divided
    by the same power of two (librosa derives ``n_fft`` from the bins it is
    given: every bin keeps its frequency exactly, since only powers of two
    scale), and each frame's maximum over *all* bins as piptrack's reference
    (its threshold is 0.1 of that). ``tests/test_oracle_qa_audio.py``
    compares it with the full call."""
    import librosa

    magnitude = np.asarray(magnitude)
    n_fft = 2 * (magnitude.shape[0] - 1)
    kwargs = {}
    if n_fft >= 4 and n_fft & (n_fft - 1) == 0 and magnitude.shape[1] > 0:
        freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
        first_out = int(np.searchsorted(freqs, TUNING_FMAX))  # first bin >= fmax
        short = n_fft
        while short // 4 >= first_out and short > 4:
            short //= 2
        if short < n_fft:
            column_max = magnitude.max(axis=0)
            kwargs = {"ref": lambda S, axis=-2: column_max}
            sample_rate = sample_rate / (n_fft // short)
            magnitude, n_fft = magnitude[:short // 2 + 1], short
    with warnings.catch_warnings():  # librosa warns when no pitch is found
        warnings.simplefilter("ignore")
        return float(librosa.estimate_tuning(S=magnitude, sr=sample_rate, n_fft=n_fft, **kwargs))


def piano_evidence(audio: np.ndarray, sample_rate: int, notes: Sequence) -> dict:
    """``explained``, ``chance`` and ``piano_score`` of a clip (see the module
    docstring); ``notes`` have ``start``, ``end`` (seconds) and ``pitch``."""
    audio = _check(audio, sample_rate)
    if not notes or not np.any(audio):
        return {"explained": 0.0, "chance": 0.0, "percussive": 0.0, "piano_score": 0.0}
    spec, freqs, frame_seconds = _power_spectrogram(audio, int(sample_rate))
    bin_hz = freqs[1] - freqs[0]
    min_hz = max(PIANO_MIN_HZ, RESOLVE_BINS * bin_hz / (2 ** (DETUNE_CENTS / 1200) - 1))
    keep = (freqs >= min_hz) & (freqs <= PIANO_MAX_HZ)
    total = float(spec[:, keep].sum())
    if total <= 0:
        return {"explained": 0.0, "chance": 0.0, "percussive": 0.0, "piano_score": 0.0}
    tuning = estimate_tuning(np.sqrt(spec.T), int(sample_rate))
    if not math.isfinite(tuning):
        tuning = 0.0
    n_fft_seconds = 2 * (len(freqs) - 1) / sample_rate

    def share(detune: float) -> float:
        mask = _note_mask(notes, spec.shape[0], frame_seconds, freqs, tuning, detune, n_fft_seconds)
        return float((spec * mask)[:, keep].sum()) / total

    explained = share(0.0)
    chance = 0.5 * (share(DETUNE_CENTS) + share(-DETUNE_CENTS))
    percussive = percussive_share(audio, int(sample_rate))
    score = min(max(explained - chance, 0.0), 1.0) * (1.0 - percussive)
    return {"explained": round(explained, 4), "chance": round(chance, 4),
            "percussive": round(percussive, 4), "piano_score": round(score, 4)}


def _median_rows(spec: np.ndarray, size: int) -> np.ndarray:
    """Median filter of odd width ``size`` along the last axis of a 2-D array,
    ``mode="reflect"``, as ``scipy.ndimage.median_filter(spec, size=(1, size))``
    computes it, but several times faster: every row is padded by its own
    reflection (SciPy's ``reflect`` is NumPy's ``symmetric``) and the rows,
    laid end to end, go through SciPy's fast 1-D median filter once; no window
    of a kept sample reaches past its row's padding. Rows shorter than
    ``size`` (where repeated reflections differ) take SciPy's N-D filter."""
    from scipy.ndimage import median_filter

    if size % 2 != 1:
        raise ValueError(f"the median filter's width must be odd, got {size}")
    half = size // 2
    rows, width = spec.shape
    if width < size or rows == 0:
        return median_filter(spec, size=(1, size), mode="reflect")
    padded = np.pad(spec, ((0, 0), (half, half)), mode="symmetric")
    filtered = median_filter(padded.ravel(), size=size, mode="reflect")
    return filtered.reshape(padded.shape)[:, half:half + width].copy()


def hpss_power(power: np.ndarray, kernel: tuple[int, int] = (HPSS_TIME_KERNEL, HPSS_KERNEL),
               margin: float = HPSS_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive parts of a power spectrogram ``(freq, time)``:
    what ``librosa.decompose.hpss(power, kernel_size=kernel, margin=margin)``
    returns (a median filter of ``kernel[0]`` frames across time for the
    harmonic part and of ``kernel[1]`` bins across frequency for the
    percussive part, soft masks of power 2 with the margin), with the median
    filters run as 1-D filters row by row."""
    import librosa

    power = np.asarray(power)
    harmonic_median = _median_rows(power, kernel[0])
    percussive_median = _median_rows(np.ascontiguousarray(power.T), kernel[1]).T
    split_zeros = margin == 1
    mask_h = librosa.util.softmask(harmonic_median, percussive_median * margin, power=2.0,
                                   split_zeros=split_zeros)
    mask_p = librosa.util.softmask(percussive_median, harmonic_median * margin, power=2.0,
                                   split_zeros=split_zeros)
    return power * mask_h, power * mask_p


def percussive_share(audio: np.ndarray, sample_rate: int) -> float:
    """Share of the clip's power that median-filtering HPSS (librosa's
    definition, :func:`hpss_power`: 46 ms window, hop half of it, medians of
    :data:`HPSS_TIME_KERNEL` frames across time and :data:`HPSS_KERNEL` bins
    across frequency, margin :data:`HPSS_MARGIN`, on the audio decimated to
    about :data:`HPSS_SAMPLE_RATE` Hz) assigns to percussion: ``P / (H + P)``."""
    import librosa

    audio = _check(audio, sample_rate).astype(np.float32)
    step = max(int(sample_rate // HPSS_SAMPLE_RATE), 1)  # decimate: 0-11 kHz is enough
    if step > 1:
        from scipy.signal import decimate

        audio = decimate(audio, step, ftype="fir", zero_phase=False).astype(np.float32)
        sample_rate = sample_rate // step
    n_fft = 1 << int(round(math.log2(0.046 * sample_rate)))
    power = np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=n_fft // 2)) ** 2
    harmonic, percussive = hpss_power(power)
    total = float(harmonic.sum() + percussive.sum())
    return float(percussive.sum()) / total if total > 0 else 0.0


def piano_score(audio: np.ndarray, sample_rate: int, notes: Sequence) -> float:
    """How much of the clip is solo piano, in [0, 1] (see the module docstring)."""
    return piano_evidence(audio, sample_rate, notes)["piano_score"]


def silence_ratio(audio: np.ndarray, sample_rate: int) -> float:
    """Share of 50 ms blocks whose RMS is below :data:`QA_SILENCE_DBFS`."""
    audio = _check(audio, sample_rate)
    block = max(int(round(SILENCE_BLOCK_SECONDS * sample_rate)), 1)
    n = len(audio) // block
    if n == 0:
        return 1.0
    rms = np.sqrt(np.mean(audio[:n * block].reshape(n, block) ** 2, axis=1))
    return float(np.mean(rms < 10.0 ** (QA_SILENCE_DBFS / 20.0)))


def _biquad(b: list[float], a: list[float], x: np.ndarray) -> np.ndarray:
    from scipy.signal import lfilter

    return lfilter(np.asarray(b) / a[0], np.asarray(a) / a[0], x)


def k_weight(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """BS.1770 K-weighting: +4 dB high shelf at 1500 Hz (Q 0.7071), then a
    38 Hz high pass (Q 0.5), as RBJ biquads at ``sample_rate``."""
    fs = float(sample_rate)
    gain_db, fc, q = 4.0, 1500.0, 1 / math.sqrt(2)
    big_a = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * fc / fs
    alpha = math.sin(w0) / (2 * q)
    cw = math.cos(w0)
    sa = 2 * math.sqrt(big_a) * alpha
    shelf_b = [big_a * ((big_a + 1) + (big_a - 1) * cw + sa), -2 * big_a * ((big_a - 1) + (big_a + 1) * cw),
               big_a * ((big_a + 1) + (big_a - 1) * cw - sa)]
    shelf_a = [(big_a + 1) - (big_a - 1) * cw + sa, 2 * ((big_a - 1) - (big_a + 1) * cw),
               (big_a + 1) - (big_a - 1) * cw - sa]
    fc, q = 38.0, 0.5
    w0 = 2 * math.pi * fc / fs
    alpha = math.sin(w0) / (2 * q)
    cw = math.cos(w0)
    hp_b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
    hp_a = [1 + alpha, -2 * cw, 1 - alpha]
    return _biquad(hp_b, hp_a, _biquad(shelf_b, shelf_a, audio))


def loudness_lufs(audio: np.ndarray, sample_rate: int) -> float | None:
    """Integrated loudness (BS.1770-4, mono) in LUFS; None for silence."""
    audio = _check(audio, sample_rate)
    block = int(round(LOUDNESS_BLOCK_SECONDS * sample_rate))
    step = block // 4
    if len(audio) < block:
        return None
    weighted = k_weight(audio, sample_rate)
    power = np.mean(np.lib.stride_tricks.sliding_window_view(weighted ** 2, block)[::step], axis=1)
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10 * np.log10(power)
    gated = power[lk > LOUDNESS_ABSOLUTE_GATE]
    if gated.size == 0:
        return None
    relative = -0.691 + 10 * math.log10(float(gated.mean())) + LOUDNESS_RELATIVE_GATE
    gated = power[(lk > LOUDNESS_ABSOLUTE_GATE) & (lk > relative)]
    return round(-0.691 + 10 * math.log10(float(gated.mean())), 2)
