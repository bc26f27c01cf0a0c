"""``clip_score``: video-audio agreement, ``100 * cos(image, audio)`` in CLIP space.

Video side: frames of the clip's reference video sampled at 1 frame per
second, at times ``k + 0.5`` s (frame ``floor((k + 0.5) * fps)``) for each
whole second ``k`` (at least one frame); each whole frame embedded with CLIP's
image encoder as square tiles covering it (:mod:`copbench.embedders.clip_image`;
no centre crop), L2-normalised, averaged. Audio side: the Wav2CLIP audio
encoder (:mod:`copbench.embedders.wav2clip`, the official architecture, one
embedding per clip). Cosine similarity x 100 (Wav2CLIP's paper reports
cosine; x 100 as CLIPScore). Higher is better; range -100..100. The
video embedding depends only on the reference video and is computed once per
clip per run.
"""

from __future__ import annotations

import math

import numpy as np

from ..embedders.clip_image import ClipImageEmbedder
from ..embedders.wav2clip import DIMS as WAV2CLIP_DIMS, Wav2ClipEmbedder
from ..errors import MetricError
from .base import Metric, ScoreItem
from .clap_score import cosine_x100

NAME = "clip_score"
VERSION = "2.0"
FRAMES_PER_SECOND = 1.0


def sample_indices(num_frames: int, fps: float, rate: float = FRAMES_PER_SECOND) -> list[int]:
    seconds = num_frames / fps
    count = max(1, int(math.floor(seconds * rate)))
    return sorted({min(num_frames - 1, int(math.floor((k + 0.5) / rate * fps))) for k in range(count)})


class ClipScore(Metric):
    NAME = NAME
    VERSION = VERSION
    COLUMNS = {NAME: True}

    def __init__(self):
        self.audio_embedder = Wav2ClipEmbedder().load()
        self.image_embedder = ClipImageEmbedder().load()
        dim = int(self.image_embedder.model.config.projection_dim)
        if dim != WAV2CLIP_DIMS:
            raise MetricError(f"the CLIP model's projection ({dim}-d) does not match the Wav2CLIP "
                              f"encoder's ({WAV2CLIP_DIMS}-d)",
                              item="clip_score")

    def settings(self) -> dict:
        return {"frames_per_second": FRAMES_PER_SECOND, "frame_times": "k + 0.5 s",
                "audio_embedder": self.audio_embedder.provenance(),
                "image_embedder": self.image_embedder.provenance()}

    def video_embedding(self, clip) -> np.ndarray:
        wanted = set(sample_indices(clip.num_frames, clip.fps))
        frames = [f for i, f in enumerate(clip.iter_frames()) if i in wanted]
        if not frames:
            raise MetricError("the reference video has no frames", item=clip.id)
        return self.image_embedder.embed_frames(frames).mean(axis=0)

    def score(self, item: ScoreItem) -> dict[str, float]:
        audio = self.audio_embedder.embed(item.audio, item.sample_rate).mean(axis=0)
        return {NAME: cosine_x100(self.video_embedding(item.clip), audio)}
