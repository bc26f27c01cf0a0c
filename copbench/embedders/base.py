"""The embedder interface shared by FAD, CLAP score and CLIP score.

An embedder maps mono audio (any rate; resampled with librosa ``soxr_hq`` to
its own ``SAMPLE_RATE``) to ``(N, D)`` float64 frame embeddings with
deterministic, non-overlapping windowing. Embedders with pretrained weights
load them in :meth:`Embedder.load` (never in ``__init__`` of a metric module
import), verify a checksum, and report the weights' sha256 in
:meth:`Embedder.provenance`.
"""

from __future__ import annotations

import numpy as np
import librosa

RESAMPLER = "soxr_hq"


def to_rate(audio: np.ndarray, sample_rate: int, target: int) -> np.ndarray:
    y = np.asarray(audio, dtype=np.float32).reshape(-1)
    if int(sample_rate) == int(target):
        return y
    return librosa.resample(y, orig_sr=int(sample_rate), target_sr=int(target), res_type=RESAMPLER)


def windows(audio: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping windows of ``size`` samples; a partial last window is
    zero-padded when at least half full and dropped otherwise; at least one."""
    n = audio.shape[0]
    count = max(1, n // size + (1 if n % size >= size / 2 else 0))
    padded = np.zeros(count * size, dtype=np.float32)
    padded[:min(n, count * size)] = audio[:count * size]
    return padded.reshape(count, size)


class Embedder:
    """Base class: subclasses set ``NAME``, ``VERSION``, ``SAMPLE_RATE`` and
    implement :meth:`_embed` on audio at ``SAMPLE_RATE``."""

    NAME = ""
    VERSION = ""
    SAMPLE_RATE = 16000
    weights_info: dict | None = None  # {"path", "sha256", "verified_against"} once loaded

    def settings(self) -> dict:
        return {}

    def load(self) -> "Embedder":
        """Load weights (no-op for weightless embedders); returns self."""
        return self

    def provenance(self) -> dict:
        return {"name": self.NAME, "version": self.VERSION, "sample_rate": self.SAMPLE_RATE,
                "resampler": f"librosa {RESAMPLER}", "settings": self.settings(),
                "weights": self.weights_info}

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        out = self._embed(to_rate(audio, sample_rate, self.SAMPLE_RATE))
        return np.asarray(out, dtype=np.float64)

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError
