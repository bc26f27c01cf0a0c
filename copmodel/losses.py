"""Stage-3 losses: contrastive audio-video InfoNCE and DPO for flow matching.

InfoNCE: with L2-normalised audio embeddings ``a_i`` and video embeddings
``v_i`` of a batch and a learnable temperature ``tau`` (stored as ``log tau``,
initialised to log 0.07), logits ``a_i . v_j / tau``; the loss is the mean of the
audio->video and video->audio cross-entropies with the matching pair as target.

DPO (Diffusion-DPO adapted to flow matching): for a preference pair (winner w,
loser l) of one clip, with the same noise and t for both,
``L = -log sigmoid(-beta * ((e_theta(w) - e_theta(l)) - (e_ref(w) - e_ref(l))))``
where ``e`` is the per-sample flow-matching error of the trained and the frozen
reference model. Lowering the winner's error (relative to the reference) lowers
the loss; lowering the loser's raises it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ContrastiveHead(nn.Module):
    """Projections of audio hidden states and video features plus ``log tau``."""

    def __init__(self, dim: int, video_dim: int, out_dim: int, temperature_init: float = 0.07):
        super().__init__()
        self.audio_proj = nn.Linear(dim, out_dim)
        self.video_proj = nn.Linear(video_dim, out_dim)
        self.log_temp = nn.Parameter(torch.tensor(math.log(temperature_init)))

    def forward(self, audio_hidden: torch.Tensor, video_pooled: torch.Tensor) -> torch.Tensor:
        """Audio tokens ``(B, N, dim)`` (mean-pooled) and video ``(B, video_dim)``."""
        return info_nce(self.audio_proj(audio_hidden.mean(1)), self.video_proj(video_pooled),
                        self.log_temp)


def info_nce(audio: torch.Tensor, video: torch.Tensor, log_temp: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of paired embeddings ``(B, D)``."""
    a = F.normalize(audio.float(), dim=-1)
    v = F.normalize(video.float(), dim=-1)
    logits = a @ v.T / log_temp.float().exp().clamp_min(1e-3)
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def dpo_flow_loss(err_w: torch.Tensor, err_l: torch.Tensor, ref_err_w: torch.Tensor,
                  ref_err_l: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean DPO loss over pairs from per-sample flow errors ``(P,)``."""
    margin = (err_w - err_l) - (ref_err_w.detach() - ref_err_l.detach())
    return -F.logsigmoid(-beta * margin).mean()
