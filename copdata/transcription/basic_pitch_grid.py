"""basic-pitch's sample and frame grid: its rates, windows and resampling.

Shared by the one-shot pass (:mod:`copdata.transcription.basic_pitch`) and the
streaming pass (:mod:`copdata.transcription.stream`), so neither imports the
other's module for them.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np


MODEL_SAMPLE_RATE = 22050  # basic_pitch.constants.AUDIO_SAMPLE_RATE
FFT_HOP = 256  # basic_pitch.constants.FFT_HOP
WINDOW_SAMPLES = 2 * MODEL_SAMPLE_RATE - FFT_HOP  # AUDIO_N_SAMPLES = 43844
OVERLAP_FRAMES = 30  # run_inference: n_overlapping_frames
OVERLAP_SAMPLES = OVERLAP_FRAMES * FFT_HOP
HOP_SAMPLES = WINDOW_SAMPLES - OVERLAP_SAMPLES
FRAMES_PER_SECOND = MODEL_SAMPLE_RATE // FFT_HOP  # ANNOTATIONS_FPS = 86
WINDOWS_PER_CALL = 8  # most windows per onnxruntime call (~16 s of audio)


def to_model_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 audio resampled to 22050 Hz, length ``ceil(n * 22050 / sr)``."""
    if sample_rate == MODEL_SAMPLE_RATE:
        return np.ascontiguousarray(audio, dtype=np.float32)
    n_out = int(math.ceil(audio.shape[0] * MODEL_SAMPLE_RATE / sample_rate))
    if importlib.util.find_spec("soxr") is not None:
        import soxr
        out = soxr.resample(audio.astype(np.float32, copy=False), sample_rate, MODEL_SAMPLE_RATE,
                            quality="HQ")
    else:
        from scipy.signal import resample_poly
        g = math.gcd(int(sample_rate), MODEL_SAMPLE_RATE)
        out = resample_poly(audio, MODEL_SAMPLE_RATE // g, int(sample_rate) // g)
    out = np.asarray(out, dtype=np.float32)
    if out.shape[0] >= n_out:
        return np.ascontiguousarray(out[:n_out])
    return np.pad(out, (0, n_out - out.shape[0]))


def frame_windows(audio_22k: np.ndarray) -> np.ndarray:
    """basic-pitch's windows of 22050 Hz audio: float32 ``(n_windows, 43844, 1)``."""
    padded = np.concatenate([np.zeros(OVERLAP_SAMPLES // 2, np.float32),
                             audio_22k.astype(np.float32, copy=False)])
    n_windows = int(math.ceil(padded.shape[0] / HOP_SAMPLES))
    total = (n_windows - 1) * HOP_SAMPLES + WINDOW_SAMPLES
    padded = np.pad(padded, (0, total - padded.shape[0]))
    view = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SAMPLES)[::HOP_SAMPLES]
    return view[:n_windows, :, None]  # a strided view: batches are copied when run


def unwrap_windows(output: np.ndarray, n_samples_22k: int) -> np.ndarray:
    """Drop 15 frames at both ends of each window, concatenate, trim to the audio."""
    half = OVERLAP_FRAMES // 2
    kept = output[:, half:-half, :]
    n_frames = int(math.floor(n_samples_22k * (FRAMES_PER_SECOND / MODEL_SAMPLE_RATE)))
    return kept.reshape(-1, kept.shape[2])[:n_frames]
