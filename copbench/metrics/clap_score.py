"""``clap_score``: text-audio agreement, ``100 * cos(text, audio)`` in CLAP space.

The text says what the audio should sound like: the ``sound`` step of the
clip's ``steps.json`` (e.g. "The result is solo piano, mezzo-forte on average,
spanning C3 to G5."), else a ``caption`` column of the clip's row in
``clips.jsonl``, or a fixed ``prompt`` when given; never the video
description (a clip with none of these is an error). The audio embedding is
the normalised mean of the L2-normalised CLAP embeddings of the output's
non-overlapping 10 s windows (:mod:`copbench.embedders.clap`, LAION-CLAP
music_speech by default; deterministic, no random crops). av-benchmark's
``LAION-CLAP-Score`` is the same cosine without the factor 100 (so 0.31
there is 31 here). Higher is better; range -100..100.
"""

from __future__ import annotations

import numpy as np

from ..embedders.clap import ClapEmbedder
from ..errors import MetricError
from .base import Metric, ScoreItem

NAME = "clap_score"
VERSION = "2.0"


def sound_text(clip) -> str:
    """What the clip should sound like: its ``sound`` step, else a ``caption`` column."""
    for step in clip.steps():
        if step.get("step") == "sound" and step.get("text"):
            return str(step["text"])
    caption = (getattr(clip, "row", None) or {}).get("caption")
    if caption:
        return str(caption)
    raise MetricError("the clip has no 'sound' step in steps.json and no 'caption' column; "
                      "CLAP score needs a description of the sound", item=str(clip.id))


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
        return {"text": self.prompt or "the clip's 'sound' step (else its 'caption' column)",
                "scale": "100 x cosine", "embedder": self.embedder.provenance(),
                "audio_pool": "normalised mean of window embeddings"}

    def text_embedding(self, text: str) -> np.ndarray:
        if text not in self._text_cache:
            self._text_cache[text] = self.embedder.embed_text([text])[0]
        return self._text_cache[text]

    def score(self, item: ScoreItem) -> dict[str, float]:
        text = self.prompt or sound_text(item.clip)
        audio = self.embedder.embed(item.audio, item.sample_rate).mean(axis=0)
        return {NAME: cosine_x100(self.text_embedding(text), audio)}
