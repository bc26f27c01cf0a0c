"""Video encoders: per-frame features ``(B, T, video_dim)`` at the video fps.

Built-in: a small CNN over grayscale frames resized to ``(frame_height,
frame_width)`` that trains from scratch. Pretrained: a CLIP image encoder
(transformers) loaded from a local folder or the HF cache (see weights.py); its
per-frame embeddings are computed once per clip (:func:`clip_image_features`) and
cached, and the model learns only a projection.

CLIP sees the whole keyboard: a wide strip (e.g. 1840x200) is cut into
``ceil(W / H)`` square tiles left to right (the last one zero-padded on the
right), each tile is embedded (CLIP's centre crop of a square is the whole
square) and a frame's feature is the mean of its tiles' embeddings. A tall frame
is tiled top to bottom the same way. Nothing of the frame is cropped away.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from .errors import ConfigError
from .presets import NetConfig

log = logging.getLogger(__name__)


def preprocess_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """RGB uint8 ``(T, H, W, 3)`` -> grayscale uint8 ``(T, height, width)`` (area resize)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ConfigError(f"expected RGB frames (T, H, W, 3), got shape {frames.shape}",
                          item="frames")
    out = np.empty((frames.shape[0], height, width), dtype=np.uint8)
    for i, frame in enumerate(frames):
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        out[i] = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
    return out


class FrameCNN(nn.Module):
    """Grayscale frames ``(B, T, h, w)`` uint8 -> ``(B, T, out_dim)`` (2x average-pooled
    first, two strided convolutions, pooled to 8 columns, projected)."""

    def __init__(self, cfg: NetConfig, out_dim: int):
        super().__init__()
        c = cfg.video_channels
        self.net = nn.Sequential(
            nn.AvgPool2d(2),  # the roll predictor sees full resolution; this is a summary
            nn.Conv2d(1, c, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d((1, 8)),
        )
        self.proj = nn.Linear(2 * c * 8, out_dim)
        self.out_dim = out_dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, h, w = frames.shape
        x = frames.reshape(b * t, 1, h, w).float() / 255.0 - 0.5
        return self.proj(self.net(x).flatten(1)).reshape(b, t, -1)


class FeatureProjection(nn.Module):
    """Cached pretrained features ``(B, T, D)`` -> ``(B, T, out_dim)``."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, out_dim))
        self.out_dim = out_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features.float())


def _clip_dir(spec: str) -> Path:
    from .weights import pretrained_dir

    return pretrained_dir(spec, "net.video_encoder", "cnn")


def clip_feature_dim(spec: str) -> int:
    from transformers import CLIPVisionConfig

    # the dimension CLIPVisionModelWithProjection outputs (clip_image_features)
    return int(CLIPVisionConfig.from_pretrained(_clip_dir(spec), local_files_only=True).projection_dim)


_CLIP_CACHE: dict[str, tuple] = {}


def square_tiles(frame: np.ndarray) -> list[np.ndarray]:
    """``(H, W, 3)`` -> square tiles covering the whole frame (the last zero-padded)."""
    h, w = frame.shape[:2]
    if w >= h:
        n = -(-w // h)
        padded = np.zeros((h, n * h, 3), dtype=frame.dtype)
        padded[:, :w] = frame
        return [padded[:, i * h:(i + 1) * h] for i in range(n)]
    return [t.transpose(1, 0, 2) for t in square_tiles(frame.transpose(1, 0, 2))]


@torch.no_grad()
def clip_image_features(frames: np.ndarray, spec: str, batch: int = 32) -> np.ndarray:
    """Per-frame CLIP image embeddings ``float32 (T, projection_dim)``: the mean over the
    frame's square tiles (see the module docstring)."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    path = _clip_dir(spec)
    if spec not in _CLIP_CACHE:
        _CLIP_CACHE[spec] = (
            CLIPImageProcessor.from_pretrained(path, local_files_only=True),
            CLIPVisionModelWithProjection.from_pretrained(path, local_files_only=True).eval())
    processor, model = _CLIP_CACHE[spec]
    tiles, owner = [], []
    for f, frame in enumerate(np.asarray(frames)):
        for tile in square_tiles(frame):
            tiles.append(np.ascontiguousarray(tile))
            owner.append(f)
    embeds = []
    for i in range(0, len(tiles), batch):
        inputs = processor(images=tiles[i:i + batch], return_tensors="pt")
        embeds.append(model(**inputs).image_embeds.float().numpy())
    per_tile = np.concatenate(embeds)
    owner = np.asarray(owner)
    out = np.stack([per_tile[owner == f].mean(axis=0) for f in range(len(frames))])
    return out.astype(np.float32)


def build_video_encoder(cfg: NetConfig) -> nn.Module:
    """``"cnn"`` (frames in) or ``"clip:<dir>"`` (cached features in)."""
    if cfg.video_encoder == "cnn":
        return FrameCNN(cfg, cfg.video_dim)
    if cfg.video_encoder.startswith("clip:"):
        return FeatureProjection(clip_feature_dim(cfg.video_encoder), cfg.video_dim)
    raise ConfigError("unknown video encoder; use 'cnn' or 'clip:<dir>'", item=cfg.video_encoder)
