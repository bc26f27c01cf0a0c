"""Video encoders: per-frame features ``(B, T, video_dim)`` at the video fps.

Built-in: a small CNN over grayscale frames resized to ``(frame_height,
frame_width)`` that trains from scratch. Pretrained: a CLIP image encoder
(transformers) loaded from a local folder; its per-frame embeddings are computed
once per clip (:func:`clip_image_features`) and cached, and the model learns only
a projection.
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
    from transformers import CLIPConfig

    return int(CLIPConfig.from_pretrained(_clip_dir(spec), local_files_only=True).projection_dim)


_CLIP_CACHE: dict[str, tuple] = {}


@torch.no_grad()
def clip_image_features(frames: np.ndarray, spec: str, batch: int = 32) -> np.ndarray:
    """Per-frame CLIP image embeddings ``float32 (T, projection_dim)``."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    path = _clip_dir(spec)
    if spec not in _CLIP_CACHE:
        _CLIP_CACHE[spec] = (
            CLIPImageProcessor.from_pretrained(path, local_files_only=True),
            CLIPVisionModelWithProjection.from_pretrained(path, local_files_only=True).eval())
    processor, model = _CLIP_CACHE[spec]
    out = []
    for i in range(0, len(frames), batch):
        inputs = processor(images=list(frames[i:i + batch]), return_tensors="pt")
        out.append(model(**inputs).image_embeds.float().numpy())
    return np.concatenate(out).astype(np.float32)


def build_video_encoder(cfg: NetConfig) -> nn.Module:
    """``"cnn"`` (frames in) or ``"clip:<dir>"`` (cached features in)."""
    if cfg.video_encoder == "cnn":
        return FrameCNN(cfg, cfg.video_dim)
    if cfg.video_encoder.startswith("clip:"):
        return FeatureProjection(clip_feature_dim(cfg.video_encoder), cfg.video_dim)
    raise ConfigError("unknown video encoder; use 'cnn' or 'clip:<dir>'", item=cfg.video_encoder)
