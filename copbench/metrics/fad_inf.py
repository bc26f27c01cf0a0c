"""FAD at infinite N: fadtk's FAD-inf estimator, and the spread of FD at N.

Why: the Fréchet distance of Gaussians fitted to N samples is biased upwards
by roughly ``c / N`` (the covariance estimates' noise), so FAD moves with the
number of samples and two models scored on different N are not comparable.

:func:`fad_inf` is fadtk's ``FrechetAudioDistance.score_inf`` (fadtk 1.1.0,
``fadtk/fad.py``), step for step:

1. the reference statistics (mean, ``np.cov``) are computed once from *all*
   reference frames and kept fixed;
2. for ``n`` in ``[int(n) for n in np.linspace(500, M, 25)]`` (``M`` = number of
   evaluation frames), ``n`` evaluation *frames* are drawn *with replacement*
   (``choice(M, size=n, replace=True)``) and the FD against the fixed
   reference is computed;
3. ``slope, intercept = np.polyfit(1 / ns, fds, 1)``; FAD-inf is the intercept,
   ``r2`` the fit's coefficient of determination.

fadtk draws from numpy's global generator; copbench draws from
``np.random.RandomState(seed)``, the same stream as ``np.random.seed(seed)``
before ``score_inf``, so the value equals fadtk's for the same seed (proven
against the ``fadtk`` package in ``tests_parity/test_parity_fad_inf.py``).
When the evaluated set holds fewer than 500 frames, fadtk's sizes run from
500 *down* to ``M`` and the larger draws repeat frames (flag ``few_frames``).
The intercept of an extrapolation can fall below zero: the value is kept as
fadtk computes it, flagged ``negative``, and never shown as a distance
(the leaderboard prints ``<0``). fadtk gives no interval, and neither does
this estimator (``ci95`` is null): an interval that does not cover what it
claims is worse than none.

:func:`spread_at_n` gives the ``fad_<e>`` column's interval: the spread of FD
*at the evaluated N* (what a rerun at this N would give), by half-sampling
over clips: FD at finite N is biased, so this is not an interval for the
distance between the distributions. Its lower end stops at 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .frechet import _psd_sqrt, frechet_result, frechet_samples_fast, gaussian_stats

STEPS = 25  # fadtk score_inf(steps=25)
MIN_N = 500  # fadtk score_inf(min_n=500)
HALVES = 20
Z95 = 1.959963984540054


@dataclass
class FadInfResult:
    value: float  # fadtk's FAD-inf: the intercept of FD against 1/n (may be < 0: flagged)
    slope: float
    r2: float
    points: list[tuple[int, float]] = field(default_factory=list)  # (n, FD)
    flags: list[str] = field(default_factory=list)
    n_frames: dict = field(default_factory=dict)


class _FixedReference:
    """FD of evaluation frames against fixed reference statistics (fadtk's ``mu_base,
    cov_base``); ``tr((S_r S_e)^(1/2))`` through the reference's PSD square root ``R``:
    the nuclear norm of ``Y_e R`` when the draw has fewer frames than dimensions,
    else the eigenvalues of ``R S_e R``."""

    def __init__(self, reference: np.ndarray):
        self.mu, self.sigma = gaussian_stats(reference)
        self.root = _psd_sqrt(self.sigma)
        self.trace = float(np.trace(self.sigma))

    def fd(self, frames: np.ndarray) -> float:
        mu = frames.mean(axis=0)
        y = (frames - mu) / np.sqrt(frames.shape[0] - 1)
        diff = mu - self.mu
        if y.shape[0] <= y.shape[1]:
            tr_sqrt = float(np.linalg.svd(y @ self.root, compute_uv=False).sum())
        else:
            m = self.root @ (y.T @ y) @ self.root
            tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
        return float(diff @ diff + self.trace + (y * y).sum() - 2 * tr_sqrt)


def fad_inf(reference: np.ndarray, evaluation: np.ndarray, seed: int = 0, steps: int = STEPS,
            min_n: int = MIN_N) -> FadInfResult:
    """fadtk's FAD-inf of ``(M, D)`` evaluation frames against ``(N, D)`` reference
    frames (see module doc). Deterministic for a given ``seed``."""
    from threadpoolctl import threadpool_limits
    reference = np.asarray(reference, np.float64)
    evaluation = np.asarray(evaluation, np.float64)
    if (reference.ndim != 2 or evaluation.ndim != 2 or reference.shape[1] != evaluation.shape[1]
            or reference.shape[0] < 2 or evaluation.shape[0] < 1):
        raise ValueError(f"need (N >= 2, D) reference and (M >= 1, D) evaluation frames of one D, "
                         f"got {reference.shape} and {evaluation.shape}")
    flags = []
    m, d = evaluation.shape
    if m < min_n:
        flags.append("few_frames")
    if min(reference.shape[0], min(m, min_n)) <= d:
        flags.append("rank_deficient")
    rng = np.random.RandomState(seed)
    ns = [int(n) for n in np.linspace(min_n, m, steps)]
    with threadpool_limits(limits=1, user_api="blas"):  # many small problems: one thread
        fixed = _FixedReference(reference)
        points = []
        for n in ns:
            points.append((n, fixed.fd(evaluation[rng.choice(m, size=n, replace=True)])))
    xs = 1.0 / np.array(ns, dtype=np.float64)
    ys = np.array([p[1] for p in points])
    if len(set(ns)) < 2:
        return FadInfResult(float(ys.mean()), 0.0, float("nan"), points,
                            sorted(set(flags) | {"inf_fit_degenerate"}),
                            {"reference": int(reference.shape[0]), "evaluation": int(m)})
    slope, intercept = np.polyfit(xs, ys, 1)
    total = float(((ys - ys.mean()) ** 2).sum())
    r2 = 1.0 - float(((ys - (slope * xs + intercept)) ** 2).sum()) / total if total > 0 else 1.0
    if intercept < 0:
        flags.append("negative")
    return FadInfResult(float(intercept), float(slope), r2, points, sorted(set(flags)),
                        {"reference": int(reference.shape[0]), "evaluation": int(m)})


def frechet_distance_inf(reference: np.ndarray, evaluation: np.ndarray,
                         seed: int = 0) -> tuple[float, FadInfResult]:
    """fadtk's FAD-inf of ``evaluation`` frames against fixed ``reference`` statistics:
    ``(value, details)`` (slope, r2, the 25 points, flags)."""
    res = fad_inf(reference, evaluation, seed=seed)
    return res.value, res


@dataclass
class SpreadAtN:
    value: float  # FD of all frames (sqrtm route, clamped at 0)
    ci95: tuple[float, float]
    flags: list[str] = field(default_factory=list)


def spread_at_n(units_a: dict, units_b: dict, seed: int = 0, halves: int = HALVES) -> SpreadAtN:
    """FD of two sets of units (``{unit_id: (n_i, D) frames}``) and the spread a rerun
    at this N would show: ``value +- 1.96 s`` with ``s`` the sd of FD on ``halves``
    random halves of the units (ids present on both sides kept or dropped together),
    lower end at 0. Fewer than 4 units a side: flag ``too_few_clips``, no spread."""
    if not units_a or not units_b:
        raise ValueError("FD needs at least one unit on each side")
    ids = sorted(set(units_a) | set(units_b), key=str)
    frames_a = np.concatenate([np.asarray(units_a[u], np.float64) for u in sorted(units_a, key=str)])
    frames_b = np.concatenate([np.asarray(units_b[u], np.float64) for u in sorted(units_b, key=str)])
    full = frechet_result(frames_a, frames_b)
    flags = list(full.flags)
    values = []
    if min(len(units_a), len(units_b)) >= 4:
        from threadpoolctl import threadpool_limits
        rng = np.random.default_rng(seed)
        both = [u for u in ids if u in units_a and u in units_b]
        only_a = [u for u in ids if u not in units_b]
        only_b = [u for u in ids if u not in units_a]
        with threadpool_limits(limits=1, user_api="blas"):
            for _ in range(halves):
                chosen = set()
                for stratum in (both, only_a, only_b):
                    if stratum:
                        k = max(1, int(round(0.5 * len(stratum))))
                        chosen.update(stratum[i] for i in rng.choice(len(stratum), k, replace=False))
                rows_a = [units_a[u] for u in units_a if u in chosen]
                rows_b = [units_b[u] for u in units_b if u in chosen]
                if rows_a and rows_b:
                    a, b = np.concatenate(rows_a), np.concatenate(rows_b)
                    if min(a.shape[0], b.shape[0]) >= 2:
                        values.append(frechet_samples_fast(a, b))
    if len(values) >= 2:
        sd = float(np.std(values, ddof=1))
    else:
        flags.append("too_few_clips")
        sd = 0.0
    lo = min(full.value, max(0.0, full.value - Z95 * sd))
    return SpreadAtN(full.value, (lo, full.value + Z95 * sd), sorted(set(flags)))
