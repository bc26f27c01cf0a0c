"""Conditional flow matching, independent of any network.

Path: ``x_t = (1 - t) * x0 + t * x1`` with ``x0 ~ N(0, I)`` (noise) and ``x1`` the
data; target velocity ``v = x1 - x0``; ``t`` drawn from a logit-normal
distribution (``t = sigmoid(n)``, ``n ~ N(mean, std)``). Sampling integrates
``dx/dt = v(x, t)`` from t = 0 to 1 with Euler steps; classifier-free guidance
combines ``v = v_uncond + w * (v_cond - v_uncond)``.

A network may predict the velocity directly or the data ``x1`` ("data"
prediction); then ``v = (x1_hat - x_t) / (1 - t)`` and the training error is
``|x1_hat - x1|^2``, which equals the velocity error weighted by ``(1 - t)^2``
(because ``(x1 - x_t) / (1 - t) = x1 - x0``).
"""

from __future__ import annotations

from typing import Callable

import torch

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class FlowMatching:
    """The flow-matching path, loss and Euler sampler."""

    def __init__(self, logit_normal_mean: float = 0.0, logit_normal_std: float = 1.0):
        self.mean = float(logit_normal_mean)
        self.std = float(logit_normal_std)

    def sample_t(self, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
        """``n`` times in (0, 1) from the logit-normal distribution (drawn on the
        generator's device)."""
        z = torch.randn(n, generator=generator,
                        device=generator.device if generator is not None else "cpu")
        z = z * self.std + self.mean
        return torch.sigmoid(z).to(device)

    @staticmethod
    def _bt(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)

    def interpolate(self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t = (1 - t) x0 + t x1``."""
        tb = self._bt(t, x1)
        return (1 - tb) * x0 + tb * x1

    @staticmethod
    def target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """The conditional velocity ``x1 - x0``."""
        return x1 - x0

    def per_sample_loss(self, velocity: torch.Tensor, x0: torch.Tensor,
                        x1: torch.Tensor) -> torch.Tensor:
        """Mean squared error to the target velocity, one value per sample."""
        err = (velocity.float() - self.target(x0, x1).float()) ** 2
        return err.reshape(err.shape[0], -1).mean(dim=1)

    @staticmethod
    def velocity_from_data(x1_hat: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                           min_gap: float = 1e-3) -> torch.Tensor:
        """``(x1_hat - x_t) / (1 - t)`` with ``1 - t`` clamped at ``min_gap``."""
        gap = (1 - t).clamp_min(min_gap).reshape(-1, *([1] * (xt.dim() - 1))).to(xt.dtype)
        return (x1_hat - xt) / gap

    @staticmethod
    def per_sample_data_loss(x1_hat: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """Mean squared error of a data prediction, one value per sample."""
        err = (x1_hat.float() - x1.float()) ** 2
        return err.reshape(err.shape[0], -1).mean(dim=1)

    @staticmethod
    def timesteps(steps: int, sway: float = 0.0, device=None) -> torch.Tensor:
        """``steps + 1`` times from 0 to 1: uniform ``u``, or with sway sampling
        (F5-TTS) ``t = u + s * (cos(pi / 2 * u) - 1 + u)``; ``s < 0`` spends more steps
        near t = 0 (the noise end)."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        u = torch.linspace(0.0, 1.0, steps + 1, device=device)
        if sway:
            u = u + sway * (torch.cos(torch.pi / 2 * u) - 1 + u)
        return u

    @staticmethod
    def guide(cond: torch.Tensor, uncond: torch.Tensor, weight: float,
              convention: str = "ours") -> torch.Tensor:
        """Classifier-free guidance of two network outputs. ``ours``:
        ``u + w * (c - u)`` (w = 1: no guidance); ``seed`` (the authors' code):
        ``c + w * (c - u)`` (w = 0: no guidance), i.e. ours with weight w + 1."""
        if convention == "ours":
            return uncond + weight * (cond - uncond)
        if convention == "seed":
            return cond + weight * (cond - uncond)
        raise ValueError(f"unknown guidance convention {convention!r}; use 'ours' or 'seed'")

    @torch.no_grad()
    def sample(self, cond_fn: VelocityFn, x0: torch.Tensor, steps: int,
               uncond_fn: VelocityFn | None = None, weight: float = 1.0,
               convention: str = "ours", sway: float = 0.0) -> torch.Tensor:
        """Euler integration from noise ``x0`` (t = 0) to data (t = 1) over
        :meth:`timesteps`. With ``uncond_fn`` the velocity is guided (:meth:`guide`)
        unless the weight means no guidance (1 for ``ours``, 0 for ``seed``)."""
        x = x0
        ts = self.timesteps(steps, sway, x0.device)
        neutral = 1.0 if convention == "ours" else 0.0
        for i in range(steps):
            t = ts[i].expand(x.shape[0])
            v = cond_fn(x, t)
            if uncond_fn is not None and weight != neutral:
                v = self.guide(v, uncond_fn(x, t), weight, convention)
            x = x + (ts[i + 1] - ts[i]) * v
        return x
