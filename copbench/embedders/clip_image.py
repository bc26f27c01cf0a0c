"""CLIP image embeddings (``transformers.CLIPModel``) of video frames.

Weights: the files of ``openai/clip-vit-base-patch32`` (``config.json``,
``model.safetensors``) through ``--weights clip=DIR``,
``$COPBENCH_WEIGHTS/openai--clip-vit-base-patch32`` or the Hugging Face cache;
the model is built from its ``CLIPConfig`` and the verified file loaded.

Preprocessing (CLIP's): RGB frame, shorter side resized to the model's image
size with bicubic interpolation (OpenCV), centre crop, scale to [0, 1],
normalise with the mean/std of ``preprocessor_config.json`` (CLIP's defaults
when absent). Embeddings (projection, L2-normalised) are float64.
"""

from __future__ import annotations

import json

import cv2
import numpy as np

from .clap import _features, load_hf_model

REPO = "openai/clip-vit-base-patch32"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipImageEmbedder:
    NAME = "clip"
    VERSION = "1.0"

    def __init__(self):
        self.model = None
        self.weights_info = None

    def load(self) -> "ClipImageEmbedder":
        if self.model is None:
            from transformers import CLIPConfig, CLIPModel
            self.model, folder, self.weights_info = load_hf_model("clip", REPO, CLIPModel, CLIPConfig)
            self.size = int(self.model.config.vision_config.image_size)
            self.mean, self.std = CLIP_MEAN, CLIP_STD
            pre = folder / "preprocessor_config.json"
            if pre.is_file():
                cfg = json.loads(pre.read_text())
                self.mean = tuple(cfg.get("image_mean", CLIP_MEAN))
                self.std = tuple(cfg.get("image_std", CLIP_STD))
        return self

    def provenance(self) -> dict:
        return {"name": self.NAME, "version": self.VERSION, "repo": REPO,
                "settings": {"resize": "shorter side, bicubic (OpenCV)", "crop": "centre"},
                "weights": self.weights_info}

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        scale = self.size / min(h, w)
        nh, nw = max(self.size, round(h * scale)), max(self.size, round(w * scale))
        img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_CUBIC)
        top, left = (nh - self.size) // 2, (nw - self.size) // 2
        img = img[top:top + self.size, left:left + self.size].astype(np.float32) / 255.0
        img = (img - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return img.transpose(2, 0, 1)

    def embed_frames(self, frames: list[np.ndarray]) -> np.ndarray:
        import torch
        pixels = torch.from_numpy(np.stack([self.preprocess(f) for f in frames]))
        with torch.inference_mode():
            out = _features(self.model.get_image_features(pixel_values=pixels))
        return torch.nn.functional.normalize(out, dim=-1).double().numpy()
