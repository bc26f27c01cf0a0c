"""``basicpitch``: basic-pitch posteriors pooled per second (no download).

The shipped basic-pitch model (through ``copdata.transcription``, the same path
copdata transcribes with) gives note (88), onset (88) and contour (264)
posteriors at 22050/256 frames per second; the embedding of each whole second
``k`` is the mean of the frames whose time lies in ``[k, k + 1)``: 440
dimensions, one per second. A silent input (peak below copdata's -80 dBFS
threshold, where the transcriber refuses to run) embeds as all zeros, which is
what the model's posteriors approach on silence.
"""

from __future__ import annotations

import math

import numpy as np

from copdata.errors import SilentInputError

from .base import Embedder

DIMS = 88 + 88 + 264


class BasicPitchEmbedder(Embedder):
    NAME = "basicpitch"
    VERSION = "1.0"
    SAMPLE_RATE = 22050

    def __init__(self):
        from copdata.transcription import get_transcriber
        from copdata.transcription.basic_pitch_grid import FFT_HOP, MODEL_SAMPLE_RATE
        self.transcriber = get_transcriber()
        self.frame_rate = MODEL_SAMPLE_RATE / FFT_HOP
        self.SAMPLE_RATE = MODEL_SAMPLE_RATE

    def settings(self) -> dict:
        return {"pool": "mean per second", "dims": DIMS, "frame_rate": self.frame_rate,
                "transcriber": self.transcriber.info()}

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        seconds = max(1, int(math.floor(audio.shape[0] / self.SAMPLE_RATE)))
        try:
            post = self.transcriber.posteriors(audio, self.SAMPLE_RATE)
        except SilentInputError:
            return np.zeros((seconds, DIMS))
        feats = np.concatenate([post["note"], post["onset"], post["contour"]], axis=1)
        times = np.arange(feats.shape[0]) / self.frame_rate
        second = np.floor(times + 1e-9).astype(np.int64)
        out = np.zeros((seconds, DIMS))
        for k in range(seconds):
            sel = feats[second == k]
            if len(sel):
                out[k] = sel.mean(axis=0)
        return out
