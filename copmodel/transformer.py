"""The audio flow transformer (DiT) with adaLN-zero conditioning.

Audio features ``(B, C, M)`` are cut into tokens of ``patch`` frames. Per-frame
video features are aligned in time with the tokens (the frame shown at each
token's centre) and added to them; the text enters through cross-attention; the
timestep plus pooled video and text form the global condition that modulates
every block (shift, scale, gate; the modulation and the output layer start at
zero, so a fresh network predicts zero velocity). Missing conditions (CFG,
dropout) are replaced by learned null embeddings.

Work done once per sample (:meth:`AudioDiT.prepare`) is split from the work of
each ODE step (:meth:`AudioDiT.forward`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .presets import NetConfig


def sinusoidal(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """``(N,)`` positions -> ``(N, dim)`` sin/cos features."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=positions.device) / half)
    args = positions.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def align_to_tokens(features: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """``(B, T, D)`` at video fps -> ``(B, n_tokens, D)``: the frame at each token's centre."""
    t = features.shape[1]
    idx = ((torch.arange(n_tokens, device=features.device) + 0.5) * t / n_tokens).long()
    return features[:, idx.clamp_max(t - 1)]


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, ctx_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(ctx_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor | None = None,
                ctx_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        ctx = x if ctx is None else ctx
        q = self.q(x).reshape(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.kv(ctx).reshape(b, ctx.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        mask = None if ctx_mask is None else ctx_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class DiTBlock(nn.Module):
    """Self-attention, optional cross-attention, MLP; each gated by adaLN-zero."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, ctx_dim: int | None = None):
        super().__init__()
        self.cross = ctx_dim is not None
        n_mod = 9 if self.cross else 6
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        if self.cross:
            self.norm_c = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
            self.cross_attn = Attention(dim, heads, ctx_dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"),
                                 nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, n_mod * dim))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, ctx: torch.Tensor | None = None,
                ctx_mask: torch.Tensor | None = None) -> torch.Tensor:
        mods = self.ada(c).chunk(9 if self.cross else 6, dim=-1)
        x = x + mods[2][:, None] * self.attn(modulate(self.norm1(x), mods[0], mods[1]))
        if self.cross:
            h = modulate(self.norm_c(x), mods[6], mods[7])
            x = x + mods[8][:, None] * self.cross_attn(h, ctx, ctx_mask)
        x = x + mods[5][:, None] * self.mlp(modulate(self.norm2(x), mods[3], mods[4]))
        return x


class TimestepEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal(t * 1000.0, self.dim))


@dataclass
class Conditions:
    """Per-sample conditions, computed once and reused at every ODE step."""

    video_tokens: torch.Tensor  # (B, N, dim): aligned video features, projected
    global_cond: torch.Tensor  # (B, dim): pooled video + text
    text: torch.Tensor  # (B, L, text_dim)
    text_mask: torch.Tensor  # (B, L) bool
    video_pooled: torch.Tensor  # (B, video_dim): the clip's video (never nulled), for InfoNCE
    roll: torch.Tensor | None = None  # (B, N, 88) aligned roll, or None (no roll stream)


class AudioDiT(nn.Module):
    """Velocity network over audio tokens."""

    def __init__(self, cfg: NetConfig, channels: int):
        super().__init__()
        d = cfg.dim
        self.patch, self.channels, self.dim = cfg.patch, channels, d
        self.in_proj = nn.Linear(channels * cfg.patch, d)
        self.video_proj = nn.Linear(cfg.video_dim, d)
        self.global_proj = nn.Sequential(nn.Linear(cfg.video_dim + cfg.text_dim, d), nn.SiLU(),
                                         nn.Linear(d, d))
        self.null_video = nn.Parameter(torch.zeros(cfg.video_dim))
        self.null_text = nn.Parameter(torch.randn(1, cfg.text_dim) * 0.02)
        self.t_embed = TimestepEmbedding(d)
        self.blocks = nn.ModuleList(DiTBlock(d, cfg.heads, cfg.mlp_ratio, cfg.text_dim)
                                    for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.out = nn.Linear(d, channels * cfg.patch)
        for layer in (self.final_ada[1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, M)`` -> ``(B, M / patch, C * patch)``."""
        b, c, m = x.shape
        return x.reshape(b, c, m // self.patch, self.patch).permute(0, 2, 1, 3).reshape(
            b, m // self.patch, c * self.patch)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.channels, self.patch).permute(0, 2, 1, 3).reshape(
            b, self.channels, n * self.patch)

    def audio_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, M)`` -> ``(B, N, dim)``: the input projection, before any condition."""
        return self.in_proj(self.patchify(x))

    def prepare(self, video: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                n_tokens: int, drop_video: torch.Tensor, drop_text: torch.Tensor) -> Conditions:
        """Video ``(B, T, video_dim)``, text ``(B, L, text_dim)``; ``drop_*`` bool ``(B,)``
        replace a condition by its learned null embedding."""
        video_clip = video.mean(1)  # the clip's own video, for the contrastive loss
        dv = drop_video[:, None, None]
        video = torch.where(dv, self.null_video.to(video.dtype).expand_as(video), video)
        dt = drop_text[:, None, None]
        null_text = self.null_text[None].expand(text.shape[0], text.shape[1], -1).to(text.dtype)
        text = torch.where(dt, null_text, text)
        text_mask = torch.where(drop_text[:, None], torch.zeros_like(text_mask), text_mask)
        text_mask = text_mask.clone()
        text_mask[:, 0] = True  # the null text keeps one attendable token
        m = text_mask[..., None].to(text.dtype)
        text_pooled = (text * m).sum(1) / m.sum(1)
        video_pooled = video.mean(1)
        video_tokens = self.video_proj(align_to_tokens(video, n_tokens))
        global_cond = self.global_proj(torch.cat([video_pooled, text_pooled], dim=-1))
        return Conditions(video_tokens, global_cond, text, text_mask, video_clip)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Conditions,
                extra: list[torch.Tensor] | None = None, hidden_at: int | None = None):
        """Velocity ``(B, C, M)``. ``extra[i]`` ``(B, N, dim)`` is added before block i.
        With ``hidden_at`` also returns the tokens after that block."""
        h = self.audio_tokens(x) + cond.video_tokens
        h = h + sinusoidal(torch.arange(h.shape[1], device=h.device), self.dim).to(h.dtype)
        c = self.t_embed(t) + cond.global_cond
        hidden = None
        for i, block in enumerate(self.blocks):
            if extra is not None:
                h = h + extra[i]
            h = block(h, c, cond.text, cond.text_mask)
            if hidden_at == i:
                hidden = h
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        v = self.unpatchify(self.out(modulate(self.final_norm(h), shift, scale)))
        return (v, hidden) if hidden_at is not None else v
