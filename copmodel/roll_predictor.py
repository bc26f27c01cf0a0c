"""Roll Predictor: neighbouring keyboard frames -> 88-key roll at video fps.

For frame i the input is the stack of ``context`` grayscale frames centred on i
(edges repeat the first/last frame). A small CNN keeps the horizontal
resolution (keys are laid out left to right) while striding over the height,
takes the maximum over the remaining rows, and a linear layer maps the
per-column features to 88 logits (column k = MIDI pitch 21 + k). Trained with
binary cross-entropy against ``roll > 0`` on a random subset of frames per step;
:func:`frame_f1` is the metric it logs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .presets import NUM_KEYS, NetConfig


def context_index(num_frames: int, context: int, device=None) -> torch.Tensor:
    """``(T, context)`` frame indices centred on each frame, clamped at the edges."""
    half = context // 2
    idx = (torch.arange(num_frames, device=device)[:, None]
           + torch.arange(-half, context - half, device=device)[None])
    return idx.clamp(0, num_frames - 1)


class RollPredictor(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        c = cfg.roll_channels
        self.context = cfg.roll_context
        self.conv = nn.Sequential(
            # no bias before GroupNorm: it would be removed by the normalisation
            nn.Conv2d(cfg.roll_context, c, 3, stride=(2, 1), padding=1, bias=False),
            nn.GroupNorm(4, c), nn.GELU(),
            nn.Conv2d(c, c, 3, stride=(2, 1), padding=1, bias=False), nn.GroupNorm(4, c), nn.GELU(),
            nn.Conv2d(c, c, 3, stride=(2, 1), padding=1), nn.GELU(),
        )
        self.head = nn.Linear(c * cfg.frame_width, NUM_KEYS)

    def forward(self, frames: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Grayscale uint8 ``(B, T, h, w)`` -> logits ``(B, T, 88)``, or ``(B, K, 88)``
        for the frames ``index`` ``(B, K)`` only."""
        b, t, h, w = frames.shape
        ctx = context_index(t, self.context, frames.device)  # (T, context)
        if index is not None:
            ctx = ctx[index]  # (B, K, context)
            x = torch.stack([frames[i, ctx[i]] for i in range(b)])
        else:
            x = frames[:, ctx]
        k = x.shape[1]
        return self.logits(x.reshape(b * k, self.context, h, w)).reshape(b, k, NUM_KEYS)

    def logits(self, stacks: torch.Tensor) -> torch.Tensor:
        """``(N, context, h, w)`` uint8 frame stacks -> ``(N, 88)`` logits."""
        x = self.conv(stacks.float() / 255.0 - 0.5).amax(dim=2)
        return self.head(x.flatten(1))

    @torch.no_grad()
    def probabilities(self, frames: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Key probabilities ``float (B, T, 88)`` (no gradient). The B x T frame stacks
        go through the network ``chunk`` at a time, whatever the batch size (the first
        convolution's activations of a whole ``base`` batch would not fit a GPU)."""
        b, t = frames.shape[:2]
        ctx = context_index(t, self.context, frames.device)  # (T, context)
        out = []
        for s in range(0, b * t, chunk):
            cells = torch.arange(s, min(b * t, s + chunk), device=frames.device)
            stacks = frames[(cells // t)[:, None], ctx[cells % t]]  # (n, context, h, w)
            out.append(torch.sigmoid(self.logits(stacks).float()))
        return torch.cat(out).reshape(b, t, NUM_KEYS)

    @torch.no_grad()
    def predict(self, frames: torch.Tensor, threshold: float = 0.5, chunk: int = 256) -> torch.Tensor:
        """Binary roll ``float (B, T, 88)``: :meth:`probabilities` above ``threshold``."""
        return (self.probabilities(frames, chunk) > threshold).float()


def roll_bce(logits: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy against ``roll > 0``."""
    return F.binary_cross_entropy_with_logits(logits.float(), (roll > 0).float())


def frame_f1(pred: torch.Tensor, roll: torch.Tensor) -> dict:
    """Frame-level precision/recall/F1 over all (frame, key) cells (micro):
    :func:`copdata.scoring.frame_scores`, the definition copbench reports."""
    from copdata.scoring import frame_scores
    return frame_scores(roll.detach().cpu().numpy(), pred.detach().cpu().numpy())


def roll_to_notes(roll, fps: float, velocity: int = 80, min_frames: int = 1) -> list:
    """A binary roll ``(T, 88)`` -> ``copdata`` notes: each run of consecutive on-frames
    of a key is one note from ``start / fps`` to ``end / fps`` at ``velocity``; runs
    shorter than ``min_frames`` are dropped."""
    import numpy as np

    from copdata.notes import PIANO_LOW, Note

    on = np.asarray(roll) > 0
    padded = np.zeros((on.shape[0] + 2, on.shape[1]), dtype=np.int8)
    padded[1:-1] = on
    edges = np.diff(padded, axis=0)
    notes = []
    for key in range(on.shape[1]):
        starts = np.flatnonzero(edges[:, key] == 1)
        ends = np.flatnonzero(edges[:, key] == -1)
        for s, e in zip(starts, ends):
            if e - s >= min_frames:
                notes.append(Note(start=float(s / fps), end=float(e / fps),
                                  pitch=PIANO_LOW + key, velocity=int(velocity)))
    return sorted(notes, key=lambda n: (n.start, n.pitch))
