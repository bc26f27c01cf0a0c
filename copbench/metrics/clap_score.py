"""``clap_score``: text-audio agreement, ``100 * cos(text, audio)`` in CLAP space.

Which text is compared is chosen explicitly (``copbench run --clap-text``) and
recorded in the settings:

- ``caption`` (default, as av-benchmark scores against the dataset's caption):
  the clip's caption, the text a ``tv2a`` model is given (``Clip.caption``: the
  first step of ``steps.json``);
- ``sound-step``: what the clip should sound like, the ``sound`` step of
  ``steps.json`` (e.g. "The result is solo piano, mezzo-forte on average,
  spanning C3 to G5."), else a ``caption`` column of the clip's row;
- any other string: that fixed prompt for every clip.

A clip without the chosen text is an error. The audio embedding is the
normalised mean of the L2-normalised CLAP embeddings of the output's
non-overlapping 10 s windows (:mod:`copbench.embedders.clap`, LAION-CLAP
music_speech by default; deterministic, no random crops). av-benchmark's
``LAION-CLAP-Score`` is the same cosine without the factor 100 (so 0.31
there is 31 here). Higher is better; range -100..100. The output audio is
prepared as av-benchmark's ``AudioDataset`` prepares it for LAION-CLAP
(:func:`copbench.metrics.base.av_benchmark_prep`: the whole file's mean
removed, resampled to 48 kHz, cut at the clip length, a shorter output not
padded; CLAP's own repeat-padding then fills its 10 s window).
"""

from __future__ import annotations

import numpy as np

from ..embedders.clap import ClapEmbedder
from ..errors import MetricError
from .base import Metric, ScoreItem, av_benchmark_prep

NAME = "clap_score"
# 3.0: text chosen explicitly, default the caption
# 3.1: the output prepared as av-benchmark's (DC removed, cut at the clip length, no pad)
VERSION = "3.1"


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

    def __init__(self, text: str = "caption"):
        if not str(text).strip():
            raise MetricError("--clap-text is empty: give caption, sound-step or a prompt",
                              item="clap_score")
        self.text_choice = str(text)
        self.embedder = ClapEmbedder().load()
        self._text_cache: dict[str, np.ndarray] = {}

    def settings(self) -> dict:
        described = {"caption": "the clip's caption (Clip.caption, what a tv2a model is given)",
                     "sound-step": "the clip's 'sound' step (else its 'caption' column)"}
        return {"text": self.text_choice,
                "text_source": described.get(self.text_choice, "a fixed prompt"),
                "scale": "100 x cosine", "embedder": self.embedder.provenance(),
                "audio_pool": "normalised mean of window embeddings", **av_benchmark_prep()}

    def text_for(self, clip) -> str:
        if self.text_choice == "sound-step":
            return sound_text(clip)
        if self.text_choice == "caption":
            caption = clip.caption
            if not caption:
                raise MetricError("the clip has no caption (steps.json is empty); use "
                                  "--clap-text sound-step or a prompt", item=str(clip.id))
            return str(caption)
        return self.text_choice

    def text_embedding(self, text: str) -> np.ndarray:
        if text not in self._text_cache:
            self._text_cache[text] = self.embedder.embed_text([text])[0]
        return self._text_cache[text]

    def score(self, item: ScoreItem) -> dict[str, float]:
        text = self.text_for(item.clip)
        audio = self.embedder.embed(item.av_benchmark_output(), item.sample_rate,
                                    seconds=item.seconds).mean(axis=0)
        return {NAME: cosine_x100(self.text_embedding(text), audio)}
