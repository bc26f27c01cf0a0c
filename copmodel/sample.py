"""Public sampling API (used by ``copmodel sample`` and ``copbench run --model``).

``load_sampler(ckpt_path, device="cpu") -> Sampler``;
``Sampler.generate(clip, seed, steps=None, cfg=None)`` returns float32 mono audio
at ``clip.sample_rate`` with exactly ``clip.num_samples`` samples. ``clip`` is a
``copdata`` Clip (``frames()``, ``caption``, ``fps``, ``seconds``...). From stage 2 on
the roll stream is driven by the Roll Predictor's roll predicted from the clip's
frames, never by the clip's ground-truth roll. Weights are the checkpoint's EMA.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .audio import resample
from .ckpt import file_hash, load_checkpoint
from .data import condition_arrays, seq_lens
from .model import CoPModel
from .presets import Config

log = logging.getLogger(__name__)


class Sampler:
    def __init__(self, model: CoPModel, stage: int, ckpt_path: str, ckpt_hash: str,
                 step: int, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.cfg: Config = model.cfg
        self.stage, self.ckpt_path, self.ckpt_hash, self.step = stage, ckpt_path, ckpt_hash, step
        self.device = torch.device(device)

    def info(self) -> dict:
        """Provenance of generated audio."""
        return {"ckpt": self.ckpt_path, "ckpt_sha256": self.ckpt_hash, "stage": self.stage,
                "train_step": self.step, "config": self.cfg.to_dict(),
                "steps": self.cfg.sample.steps, "cfg": self.cfg.sample.cfg,
                "roll": "predicted" if self.stage >= 2 else "none"}

    def _batch(self, clip, lens) -> dict:
        arrays = condition_arrays(clip, self.cfg, lens, roll=np.zeros((lens.video_frames, 88)))
        batch = {k: torch.as_tensor(v)[None].to(self.device) for k, v in arrays.items()}
        if self.stage >= 2:
            batch["roll"] = self.model.roll_predictor.predict(
                batch["frames"], self.cfg.sample.roll_threshold)
        else:
            del batch["roll"]
        return batch

    @torch.no_grad()
    def predict_roll(self, clip) -> np.ndarray:
        """The Roll Predictor's binary roll ``uint8 (T, 88)`` for a clip (stage >= 2)."""
        lens = seq_lens(self.cfg, clip.seconds, clip.fps)
        arrays = condition_arrays(clip, self.cfg, lens, roll=np.zeros((lens.video_frames, 88)))
        frames = torch.as_tensor(arrays["frames"])[None].to(self.device)
        pred = self.model.roll_predictor.predict(frames, self.cfg.sample.roll_threshold)
        return pred[0].cpu().numpy().astype(np.uint8)

    @torch.no_grad()
    def generate_features(self, clip, seed: int, steps: int | None = None,
                          cfg: float | None = None) -> np.ndarray:
        """Raw audio features ``(C, M)`` for a clip (deterministic under ``seed``)."""
        lens = seq_lens(self.cfg, clip.seconds, clip.fps)
        batch = self._batch(clip, lens)
        g = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(1, self.model.audio.channels, lens.mel_frames, generator=g)
        feats = self.model.generate(batch, noise.to(self.device), self.stage,
                                    steps or self.cfg.sample.steps,
                                    self.cfg.sample.cfg if cfg is None else cfg)
        return feats[0].float().cpu().numpy()

    def vocode(self, features: np.ndarray, clip) -> np.ndarray:
        """Features -> float32 audio at ``clip.sample_rate``, exactly ``clip.num_samples``."""
        lens = seq_lens(self.cfg, clip.seconds, clip.fps)
        audio = self.model.audio.decode(features, lens.audio_samples)
        audio = resample(audio, self.model.audio.sample_rate, int(clip.sample_rate),
                         int(clip.num_samples))
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 0.99:  # keep the waveform in [-1, 1] for 16-bit writers
            audio = audio * (0.99 / peak)
        return audio.astype(np.float32)

    def generate(self, clip, seed: int, steps: int | None = None,
                 cfg: float | None = None) -> np.ndarray:
        """Audio for ``clip`` (see the module docstring)."""
        return self.vocode(self.generate_features(clip, seed, steps, cfg), clip)


def load_sampler(ckpt_path: str | Path, device: str = "cpu") -> Sampler:
    """Load a stage checkpoint (EMA weights) for sampling."""
    ckpt = load_checkpoint(ckpt_path)
    model = CoPModel(Config.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["ema"])
    return Sampler(model, int(ckpt["stage"]), str(ckpt_path), file_hash(ckpt_path),
                   int(ckpt["step"]), device)
