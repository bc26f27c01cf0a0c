"""Stage-3 losses: contrastive audio-video InfoNCE and DPO for flow matching.

InfoNCE: with L2-normalised audio embeddings ``a_i`` and video embeddings
``v_i`` of a batch and a learnable temperature ``tau`` (stored as ``log tau``,
initialised to log 0.07), logits ``a_i . v_j / tau``; the loss is the mean of the
audio->video and video->audio cross-entropies with the matching pair as target.
The audio embedding is computed from audio tokens that carry no video (the
DiT's input projection of ``x_t``, before video features are added), so the loss
can only fall when the audio itself matches the video. Under several processes
the embeddings of the whole global batch are gathered (with gradients), so the
negatives and the loss are those of a 1-process run.

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
    """Audio token MLP (mean-pooled), video projection and ``log tau``."""

    def __init__(self, dim: int, video_dim: int, out_dim: int, temperature_init: float = 0.07):
        super().__init__()
        self.audio_proj = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out_dim))
        self.video_proj = nn.Linear(video_dim, out_dim)
        self.log_temp = nn.Parameter(torch.tensor(math.log(temperature_init)))

    def forward(self, audio_tokens: torch.Tensor, video_pooled: torch.Tensor) -> torch.Tensor:
        """Audio tokens without video ``(B, N, dim)`` and video ``(B, video_dim)``."""
        audio = self.audio_proj(audio_tokens).mean(1)
        video = self.video_proj(video_pooled)
        return info_nce(gather_batch(audio), gather_batch(video), self.log_temp)


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` over all processes (rank order) with gradients flowing back to
    each process's own rows; ``x`` itself in a 1-process run. Every process then
    computes the global-batch loss; its gradient reaches each row W times through
    the gather and DDP averages over W, which gives the 1-process gradient."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


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
