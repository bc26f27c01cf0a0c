"""What changes from step to step of training, independent of the loop itself.

Learning-rate factor (linear warmup, cosine decay to 10 %), the global batch of a
step (a permutation seeded by ``(seed, step)``), per-sample random draws from
generators seeded by ``(seed, stage, step, position)`` (noise, t, condition
dropout, predicted-roll choice, Roll Predictor frames), the predicted-roll
schedule and the EMA of the weights. Because every draw depends only on these
seeds, W processes reproduce a 1-process run.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .data import collate
from .errors import ConfigError


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1, then cosine decay to 0.1 at ``total``."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def batch_indices(n_items: int, batch_size: int, seed: int, step: int) -> list[int]:
    """The global batch of a step: ``torch.randperm`` seeded with
    ``seed * 1_000_003 + step`` (cycled when batch > items)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    perm = torch.randperm(n_items, generator=g).tolist()
    return [perm[i % n_items] for i in range(batch_size)]


def sample_generator(seed: int, stage: int, step: int, position: int,
                     device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded by ``(seed, stage, step, position)``."""
    state = np.random.SeedSequence([seed, stage, step, position]).generate_state(1)[0]
    return torch.Generator(device=device).manual_seed(int(state))


def predicted_roll_probability(roll_condition: str, stage: int, step: int,
                               schedule_steps: int) -> float:
    """Probability that a sample is conditioned on the predicted roll (``train.roll_condition``)."""
    if roll_condition not in ("true", "predicted", "scheduled"):
        raise ConfigError("unknown roll_condition; use true, predicted or scheduled",
                          item=roll_condition)
    if stage < 2 or roll_condition == "true":
        return 0.0
    if roll_condition == "predicted" or stage == 3:
        return 1.0
    return min(1.0, step / schedule_steps) if schedule_steps > 0 else 0.0


def step_randomness(model, lens, positions: list[int], seed: int, stage: int,
                    step: int, p_predicted: float = 0.0,
                    device: torch.device | str = "cpu") -> dict:
    """Noise, t, condition dropout (all jointly with ``cond_dropout_all``, each alone with
    ``cond_dropout``), predicted-roll choice and roll-predictor frames for the given
    batch positions, drawn on ``device`` (the same draws on the same kind of device
    under any number of processes; CPU and CUDA generators differ)."""
    tc = model.cfg.train
    rows = []
    for p in positions:
        g = sample_generator(seed, stage, step, p, device)
        noise = torch.randn(model.audio.channels, lens.feat_frames, generator=g, device=device)
        t = model.flow.sample_t(1, generator=g, device=device)[0]
        drop_all = torch.rand(1, generator=g, device=device)[0] < tc.cond_dropout_all
        drops = (torch.rand(3, generator=g, device=device) < tc.cond_dropout) | drop_all
        frames = torch.randint(0, lens.video_frames, (tc.roll_frames_per_clip,), generator=g,
                               device=device)
        use_pred = torch.rand(1, generator=g, device=device)[0] < p_predicted
        rows.append({"noise": noise, "t": t, "drop_video": drops[0], "drop_text": drops[1],
                     "drop_roll": drops[2], "roll_frames": frames, "use_predicted_roll": use_pred})
    return collate(rows)


class EMA:
    """Exponential moving average of every floating tensor of a state dict;
    decay ``min(decay, (1 + step) / (10 + step))``.

    Build it from the model where it trains (after ``accelerate.prepare``, from the
    unwrapped model): its tensors are clones of the model's, on the model's device
    and in its dtype. :meth:`load_state_dict` copies a stored EMA (e.g. CPU tensors from
    a checkpoint) into those tensors; :meth:`state_dict` gives CPU copies to store."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.state[k].copy_(v)

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """Copy a stored EMA into this one's tensors (moving it to their device)."""
        if set(state) != set(self.state):
            missing, extra = set(self.state) - set(state), set(state) - set(self.state)
            raise ConfigError(f"stored EMA does not match the model (missing {sorted(missing)[:3]}, "
                              f"unexpected {sorted(extra)[:3]})", item="ema")
        for k, v in state.items():
            self.state[k].copy_(v)

    def state_dict(self) -> dict:
        """CPU copies of the averaged tensors (what a checkpoint stores)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.state.items()}
