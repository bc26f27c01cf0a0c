"""The metric interface.

A metric is a small object with a name, a version string, its settings, and
one or more output *columns* (``midi`` has several), each with its direction.
Per-clip metrics implement :meth:`Metric.score` and get their mean and 95%
bootstrap CI from the runner. Set-level metrics (FAD) also collect per-clip
state in :meth:`Metric.score` and return their summary from
:meth:`Metric.finalize`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


# av-benchmark's audio preparation (hkchengrex/av-benchmark @050a5cd,
# av_bench/data/audio_dataset.py, AudioDataset.read_from_file, lines 124-141): load,
# ``waveform.mean(dim=0)`` (mono), ``waveform - waveform.mean()`` over the whole file,
# resample to the model's rate, ``audio[:int(sr * audio_length)]`` (a cut, never a pad:
# av_bench/args.py line 8, "does not pad if under"). It feeds PANNs (FD-PANN, IS, KL),
# VGGish (FD-VGG), LAION-CLAP and PaSST, on both the ground truth and the generations.
AV_BENCHMARK_EMBEDDERS = ("vggish", "panns")  # FD-VGG, FD-PANN (fad_<e> follows av-benchmark)
AV_BENCHMARK_DC = ("mean removed over the whole file, both sides, before resampling "
                   "(av-benchmark AudioDataset.read_from_file)")
AV_BENCHMARK_LENGTH_RULE = ("both sides cut at the clip length (av-benchmark --audio_length = "
                            "clip seconds) after resampling to the model rate; a shorter output "
                            "is not padded")


def remove_dc(audio: np.ndarray) -> np.ndarray:
    """``audio - mean(audio)`` (float32, mean taken in float64)."""
    y = np.asarray(audio, dtype=np.float64).reshape(-1)
    return (y - y.mean()).astype(np.float32) if y.size else y.astype(np.float32)


@dataclass
class ScoreItem:
    """One paired clip: the reference clip (copdata ``Clip``) and the model's
    output audio, already at ``clip.sample_rate`` and ``clip.num_samples`` long.

    ``full_audio``: the output at ``clip.sample_rate`` *before* the length rule
    (None: ``audio``), for the metrics that prepare audio as av-benchmark does
    (:meth:`av_benchmark_output`)."""

    clip: Any
    audio: np.ndarray
    full_audio: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def seconds(self) -> float:
        """The clip's length in seconds (av-benchmark's ``--audio_length`` for this clip)."""
        return int(self.clip.num_samples) / int(self.clip.sample_rate)

    def av_benchmark_output(self) -> np.ndarray:
        """The output as av-benchmark loads it, up to the cut: DC removed over the whole
        output (the embedder then cuts at :attr:`seconds` after resampling)."""
        if "av_out" not in self._cache:
            full = self.audio if self.full_audio is None else self.full_audio
            self._cache["av_out"] = remove_dc(full)
        return self._cache["av_out"]

    def av_benchmark_reference(self) -> np.ndarray:
        """The reference as av-benchmark loads it, up to the cut (see above)."""
        if "av_ref" not in self._cache:
            self._cache["av_ref"] = remove_dc(self.clip.audio())
        return self._cache["av_ref"]

    @property
    def sample_rate(self) -> int:
        return int(self.clip.sample_rate)

    @property
    def clip_id(self) -> str:
        return str(self.clip.id)

    def reference_audio(self) -> np.ndarray:
        if "ref" not in self._cache:
            ref = np.asarray(self.clip.audio(), dtype=np.float32)
            n = int(self.clip.num_samples)
            self._cache["ref"] = fit_length(ref, n)
        return self._cache["ref"]

    def reference_notes(self):
        if "notes" not in self._cache:
            self._cache["notes"] = self.clip.notes()
        return self._cache["notes"]


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """The length rule: trim the end, or zero-pad the end, to ``num_samples``."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.shape[0] >= num_samples:
        return audio[:num_samples]
    return np.pad(audio, (0, num_samples - audio.shape[0]))


def av_benchmark_prep() -> dict:
    """The ``settings()`` entries of a metric whose audio is prepared as av-benchmark's."""
    return {"audio_prep": "av-benchmark AudioDataset (av_bench/data/audio_dataset.py @050a5cd)",
            "dc": AV_BENCHMARK_DC, "length_rule": AV_BENCHMARK_LENGTH_RULE}


class Metric:
    """Base class. Subclasses set ``NAME``, ``VERSION`` and ``COLUMNS``
    (column name -> higher is better)."""

    NAME: str = ""
    VERSION: str = ""
    COLUMNS: dict[str, bool] = {}
    SET_LEVEL = False
    # Values that are conventions rather than measurements: name -> what is
    # assigned when. Counted per run and reported next to the metric's columns.
    CONVENTIONS: dict[str, str] = {}

    def count_convention(self, name: str) -> None:
        if name not in self.CONVENTIONS:
            raise KeyError(f"{type(self).__name__} has no convention {name!r}")
        counts = self.__dict__.setdefault("_convention_counts", {})
        counts[name] = counts.get(name, 0) + 1

    def convention_counts(self) -> dict[str, int]:
        """``{convention: clips it decided}`` (zeros included) for this run."""
        counts = self.__dict__.get("_convention_counts", {})
        return {name: int(counts.get(name, 0)) for name in self.CONVENTIONS}

    def bind_split(self, clips: list) -> None:
        """Called once with every clip of the evaluated split before scoring
        (FAD takes its reference statistics from all of them)."""

    @property
    def columns(self) -> dict[str, bool]:
        return dict(self.COLUMNS) or {self.NAME: True}

    def settings(self) -> dict:
        return {}

    def provenance(self) -> dict:
        """Name, version, settings and (for pretrained models) weight hashes."""
        out = {"name": self.NAME, "version": self.VERSION, "settings": self.settings()}
        if self.CONVENTIONS:
            out["conventions"] = dict(self.CONVENTIONS)
        return out

    def score(self, item: ScoreItem) -> dict[str, float]:
        raise NotImplementedError

    def finalize(self, seed: int) -> dict[str, dict]:
        """Set-level columns (FAD, pooled scores): ``{column: {"mean", "ci95", "n", ...}}``;
        called for every metric after the last clip."""
        return {}
