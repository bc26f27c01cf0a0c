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

    @property
    def columns(self) -> dict[str, bool]:
        return dict(self.COLUMNS) or {self.NAME: True}

    def settings(self) -> dict:
        return {}

    def provenance(self) -> dict:
        """Name, version, settings and (for pretrained models) weight hashes."""
        return {"name": self.NAME, "version": self.VERSION, "settings": self.settings()}

    def score(self, item: ScoreItem) -> dict[str, float]:
        raise NotImplementedError

    def finalize(self, seed: int) -> dict[str, dict]:
        """Set-level metrics: ``{column: {"mean", "ci95", "n"}}``."""
        return {}
