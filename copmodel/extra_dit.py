"""Extra-DiT: the piano-roll stream of stage 2.

The roll ``(B, T, 88)`` (binary, at video fps) is aligned with the audio tokens
(the frame at each token's centre), embedded by a temporal convolution (so a
token sees onsets and offsets around it) and processed by its own adaLN-zero
blocks, conditioned on the same timestep + global condition as the audio
stream. After roll block j its tokens enter audio block i (j = i * depth_roll //
depth_audio) through a zero-initialised linear projection: a fresh Extra-DiT
adds exactly zero, so the stage-1 output is unchanged until it learns.
Dropped rolls (CFG, condition dropout) use a learned null roll embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from .presets import NUM_KEYS, NetConfig
from .transformer import DiTBlock, align_to_tokens, sinusoidal


class ExtraDiT(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        d = cfg.dim
        self.dim = d
        self.depth_audio, self.depth_roll = cfg.depth, cfg.roll_depth
        self.roll_in = nn.Sequential(
            nn.Conv1d(NUM_KEYS, d, cfg.roll_kernel, padding=cfg.roll_kernel // 2), nn.GELU(),
            nn.Conv1d(d, d, 3, padding=1))
        self.null_roll = nn.Parameter(torch.randn(d) * 0.02)
        self.blocks = nn.ModuleList(DiTBlock(d, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.roll_depth))
        self.zero_proj = nn.ModuleList(nn.Linear(d, d) for _ in range(cfg.depth))
        for layer in self.zero_proj:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def embed(self, roll: torch.Tensor, n_tokens: int, drop: torch.Tensor) -> torch.Tensor:
        """Roll ``(B, T, 88)`` in [0, 1] -> tokens ``(B, N, dim)``; ``drop`` bool ``(B,)``."""
        tokens = self.roll_in(align_to_tokens(roll.float(), n_tokens).transpose(1, 2)).transpose(1, 2)
        tokens = torch.where(drop[:, None, None], self.null_roll.expand_as(tokens), tokens)
        return tokens + sinusoidal(torch.arange(n_tokens, device=roll.device), self.dim)

    def forward(self, roll_tokens: torch.Tensor, c: torch.Tensor) -> list[torch.Tensor]:
        """Residuals ``(B, N, dim)``, one per audio block."""
        hidden, h = [], roll_tokens
        for block in self.blocks:
            h = block(h, c)
            hidden.append(h)
        return [proj(hidden[i * self.depth_roll // self.depth_audio])
                for i, proj in enumerate(self.zero_proj)]
