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


@dataclass
class ScoreItem:
    """One paired clip: the reference clip (copdata ``Clip``) and the model's
    output audio, already at ``clip.sample_rate`` and ``clip.num_samples`` long."""

    clip: Any
    audio: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

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
