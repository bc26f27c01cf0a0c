"""Seeded bootstrap confidence intervals.

``bootstrap_ci(values)`` is the percentile bootstrap of the mean: draw
``n_boot`` resamples of the clips with replacement (``numpy.random.Generator``
seeded from ``seed`` and a label, so every metric gets its own reproducible
stream), take each resample's mean, report the 2.5th and 97.5th percentiles.
``paired_bootstrap_ci(a, b)`` does the same for the per-clip differences
``b - a`` over clips common to both runs. One value gives a zero-width interval.
"""

from __future__ import annotations

import zlib
from typing import Callable, Sequence

import numpy as np

N_BOOT = 1000
LEVEL = 0.95


def rng_for(seed: int, label: str) -> np.random.Generator:
    """A generator determined by ``seed`` and a text label (crc32 of it)."""
    return np.random.default_rng([int(seed), zlib.crc32(label.encode("utf-8"))])


def bootstrap_ci(values: Sequence[float], seed: int = 0, label: str = "",
                 n_boot: int = N_BOOT, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (float64)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("bootstrap of an empty sample")
    if x.size == 1:
        return float(x[0]), float(x[0])
    idx = rng_for(seed, label).integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_statistic_ci(n: int, statistic: Callable[[np.ndarray], float], seed: int = 0,
                           label: str = "", n_boot: int = 200,
                           level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap CI of an arbitrary statistic of resampled clip indices
    (used for set-level metrics such as FAD)."""
    if n <= 1:
        v = statistic(np.arange(n))
        return float(v), float(v)
    rng = rng_for(seed, label)
    stats = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_boot)])
    lo, hi = np.percentile(stats, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def summarize(values: Sequence[float], seed: int, label: str) -> dict:
    """``{"mean", "ci95", "n"}`` of per-clip values."""
    x = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_ci(x, seed=seed, label=label)
    return {"mean": float(x.mean()), "ci95": [lo, hi], "n": int(x.size)}


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], seed: int = 0, label: str = "",
                        n_boot: int = N_BOOT, level: float = LEVEL) -> dict:
    """Mean of ``b - a`` with its paired bootstrap CI and the fraction of
    resamples where the difference is > 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired bootstrap needs two equal-length, non-empty samples")
    d = b - a
    lo, hi = bootstrap_ci(d, seed=seed, label=label, n_boot=n_boot, level=level)
    if d.size > 1:
        idx = rng_for(seed, label + "/p").integers(0, d.size, size=(n_boot, d.size))
        p_pos = float((d[idx].mean(axis=1) > 0).mean())
    else:
        p_pos = float(d[0] > 0)
    return {"diff": float(d.mean()), "ci95": [lo, hi], "n": int(d.size), "frac_resamples_positive": p_pos}
