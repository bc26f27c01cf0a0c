"""CLIP image embeddings (``transformers.CLIPModel``) of video frames.

Weights: the files of ``openai/clip-vit-base-patch32`` (``config.json``,
``model.safetensors``) through ``--weights clip=DIR``,
``$COPBENCH_WEIGHTS/openai--clip-vit-base-patch32`` or the Hugging Face cache;
the model is built from its ``CLIPConfig`` and the verified file loaded.

Whole-frame coverage: CLIP sees square images, and a centre crop of a wide
keyboard strip (e.g. 1840x200) would keep ~11% of it. Instead the frame's
shorter side is resized to the model's image size as CLIP's own preprocessing
resizes (PIL bicubic, which antialiases when shrinking; longer side
``int(size * long / short)``, as torchvision's ``Resize`` and transformers'
``CLIPImageProcessor``), and the longer side is covered by
``ceil(long / size)`` square tiles evenly spaced from the first edge to the
last (neighbours overlap when the length is not a multiple of the size):
every pixel is seen. Each tile is scaled to [0, 1] and normalised with the
mean/std of ``preprocessor_config.json`` (CLIP's defaults when absent), as
CLIP does; the frame's embedding is the normalised mean of its tiles'
L2-normalised projections (float64). A square frame is one tile, equal to
``CLIPImageProcessor``'s pixels (tested). Before version 2.0 the resize was
OpenCV bicubic without antialiasing.
"""

from __future__ import annotations

import json

import numpy as np

from .clap import _features, load_hf_model

REPO = "openai/clip-vit-base-patch32"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipImageEmbedder:
    NAME = "clip"
    VERSION = "2.0"  # 2.0: PIL bicubic (antialiased), as CLIP

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
                "settings": {"resize": "shorter side, PIL bicubic (antialiased), as CLIP",
                             "coverage": "square tiles along the longer side, mean of tiles"},
                "weights": self.weights_info}

    def tiles(self, rgb: np.ndarray) -> np.ndarray:
        """``(n_tiles, 3, size, size)`` normalised float32 tiles covering the frame."""
        from PIL import Image
        h, w = rgb.shape[:2]
        if h <= w:
            nh, nw = self.size, max(self.size, int(self.size * w / h))
        else:
            nh, nw = max(self.size, int(self.size * h / w)), self.size
        pil = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).convert("RGB")
        img = np.asarray(pil.resize((nw, nh), Image.BICUBIC), dtype=np.float32) * np.float32(1 / 255)
        img = (img - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        long = max(nh, nw)
        count = int(np.ceil(long / self.size))
        starts = np.linspace(0, long - self.size, count).round().astype(int) if count > 1 else [0]
        out = [img[s:s + self.size, :self.size] if nh >= nw else img[:self.size, s:s + self.size]
               for s in starts]
        return np.stack(out).transpose(0, 3, 1, 2)

    def embed_frames(self, frames: list[np.ndarray]) -> np.ndarray:
        """``(n_frames, D)``: per frame, the normalised mean of its tiles' embeddings."""
        import torch
        tiles = [self.tiles(f) for f in frames]
        pixels = torch.from_numpy(np.concatenate(tiles))
        with torch.inference_mode():
            out = _features(self.model.get_image_features(pixel_values=pixels))
        emb = torch.nn.functional.normalize(out, dim=-1).double().numpy()
        bounds = np.cumsum([t.shape[0] for t in tiles])[:-1]
        per_frame = np.stack([part.mean(axis=0) for part in np.split(emb, bounds)])
        return per_frame / np.linalg.norm(per_frame, axis=1, keepdims=True)
