"""``clap_score``: text-audio agreement, ``100 * cos(text, audio)`` in CLAP space.

The text is the clip's caption (``clip.caption``: the first text step), or a
fixed ``prompt`` when given. The audio embedding is the normalised mean of the
L2-normalised CLAP embeddings of the output's non-overlapping 10 s windows
(:mod:`copbench.embedders.clap`; deterministic, no random crops). Higher is
better; range -100..100.
"""

from __future__ import annotations

import numpy as np

from ..embedders.clap import ClapEmbedder
from .base import Metric, ScoreItem

NAME = "clap_score"
VERSION = "1.0"


def cosine_x100(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(100.0 * (a @ b) / denom) if denom > 0 else 0.0


class ClapScore(Metric):
    NAME = NAME
    VERSION = VERSION
    COLUMNS = {NAME: True}

    def __init__(self, prompt: str | None = None):
        self.prompt = prompt
        self.embedder = ClapEmbedder().load()
        self._text_cache: dict[str, np.ndarray] = {}

    def settings(self) -> dict:
        return {"text": self.prompt or "clip.caption", "embedder": self.embedder.provenance(),
                "audio_pool": "normalised mean of window embeddings"}

    def text_embedding(self, text: str) -> np.ndarray:
        if text not in self._text_cache:
            self._text_cache[text] = self.embedder.embed_text([text])[0]
        return self._text_cache[text]

    def score(self, item: ScoreItem) -> dict[str, float]:
        text = self.prompt or item.clip.caption
        audio = self.embedder.embed(item.audio, item.sample_rate).mean(axis=0)
        return {NAME: cosine_x100(self.text_embedding(text), audio)}
