"""The embedder interface shared by FAD, CLAP score, CLIP score, IS and KL.

An embedder maps mono audio (any rate; resampled with librosa ``soxr_hq`` to
its own ``SAMPLE_RATE``) to ``(N, D)`` float64 frame embeddings with
deterministic windowing. Subclasses only build their network and embed; the
base class does the rest, loading included (as fadtk's ``ModelLoader``):
:meth:`Embedder.load` locates the weights file named by ``SPEC`` (never
downloading it; ``copbench weights fetch`` does that), verifies its checksum,
reads it without unpickling code (:mod:`copbench.embedders.torch_io`),
converts the reference's key layout with :meth:`Embedder.convert_state`, and
loads it strictly into :meth:`Embedder.build_model`. The weights' sha256 is
reported in :meth:`Embedder.provenance`.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np

from .weights import WeightsSpec

RESAMPLER = "soxr_hq"


def to_rate(audio: np.ndarray, sample_rate: int, target: int,
            seconds: float | None = None) -> np.ndarray:
    """``audio`` resampled from ``sample_rate`` to ``target``; with ``seconds``, then cut to
    its first ``int(target * seconds)`` samples (never padded), as av-benchmark's
    ``AudioDataset`` cuts after resampling."""
    y = np.asarray(audio, dtype=np.float32).reshape(-1)
    if int(sample_rate) != int(target):
        y = librosa.resample(y, orig_sr=int(sample_rate), target_sr=int(target), res_type=RESAMPLER)
    if seconds is not None:
        y = y[:int(int(target) * float(seconds))]
    return y


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
    implement :meth:`_embed` on audio at ``SAMPLE_RATE``; pretrained ones also
    set ``SPEC`` and implement :meth:`build_model` (and :meth:`convert_state`
    when the published file's keys differ from the module's)."""

    NAME = ""
    VERSION = ""
    SAMPLE_RATE = 16000
    SPEC: WeightsSpec | None = None  # None: weightless
    model = None
    weights_info: dict | None = None  # {"file", "sha256", "verified_against"} once loaded

    def settings(self) -> dict:
        return {}

    def build_model(self):
        """The network with random weights (pretrained embedders)."""
        raise NotImplementedError

    def convert_state(self, state: dict) -> dict:
        """Map the published file's tensors to :meth:`build_model`'s keys."""
        return state

    def load_folder(self, folder: Path):
        """Load from a folder of files (embedders whose weights come as a repo)."""
        raise NotImplementedError(f"{self.NAME} weights are one file, not a folder")

    def fallback_folder(self) -> Path | None:
        """A folder to load from when the ``SPEC`` file is absent (None: no fallback)."""
        return None

    def load(self) -> "Embedder":
        """Locate, verify and load the weights (no-op when weightless or loaded); returns self."""
        if self.SPEC is None or self.model is not None:
            return self
        from ..errors import WeightsMissingError
        from .torch_io import read_state_dict
        from .weights import locate, verify
        try:
            path = locate(self.SPEC)
        except WeightsMissingError:
            folder = self.fallback_folder()
            if folder is None:
                raise
            path = folder
        if path.is_dir():
            if (path / self.SPEC.filename).is_file():
                path = path / self.SPEC.filename
            else:
                self.model, self.weights_info = self.load_folder(path)
                return self
        if not path.is_file():
            raise WeightsMissingError(f"expected a weights file, found {path}", item=str(path))
        self.weights_info = verify(path, self.SPEC)
        state = self.convert_state(read_state_dict(path))  # may read the file's shapes first
        model = self.build_model()
        model.load_state_dict(state, strict=True)
        self.model = model.eval()
        return self

    def provenance(self) -> dict:
        return {"name": self.NAME, "version": self.VERSION, "sample_rate": self.SAMPLE_RATE,
                "resampler": f"librosa {RESAMPLER}", "settings": self.settings(),
                "weights": self.weights_info}

    def embed(self, audio: np.ndarray, sample_rate: int, seconds: float | None = None) -> np.ndarray:
        """``(N, D)`` float64 embeddings of ``audio``; ``seconds``: cut at that length after
        resampling to the embedder's rate (av-benchmark's length rule; see
        :func:`copbench.metrics.base.av_benchmark_audio`)."""
        out = self._embed(to_rate(audio, sample_rate, self.SAMPLE_RATE, seconds))
        return np.asarray(out, dtype=np.float64)

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError
