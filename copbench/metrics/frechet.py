"""The Fréchet distance between two Gaussians, in float64, with checks.

``FD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))``.

The matrix square root is taken with ``scipy.linalg.sqrtm`` (what fadtk,
pytorch-fid, av-benchmark and gudgud96/frechet-audio-distance use) and checked
against an eigenvalue route, ``tr((S_a S_b)^(1/2)) = sum_i sqrt(l_i)`` with
``l_i`` the eigenvalues of the symmetric PSD matrix ``S_a^(1/2) S_b S_a^(1/2)``.
When sqrtm is not finite it is retried with ``1e-6 I`` added to both
covariances (as pytorch-fid does). Results carry flags instead of being
silently fixed: ``complex`` (sqrtm's imaginary part > 1e-3 of its magnitude),
``negative`` (FD below ``-NEGATIVE_TOL`` times the scale of the terms before
clamping to 0: round-off such as the oracle's -1e-14 is 0, not an alarm),
``mismatch`` (the two routes differ by more than 1e-6 relative), ``offset``
(the eps retry was needed), ``rank_deficient`` (no more samples than
dimensions: the covariance is singular and the value depends strongly on N;
:func:`frechet_result` then computes ``tr((S_a S_b)^(1/2))`` exactly as the
nuclear norm of ``Y_a Y_b^T`` instead of through sqrtm, which is
ill-conditioned there).

FD at finite N is biased upwards (roughly by ``tr``-terms over N); see
:mod:`copbench.metrics.fad_inf` for the extrapolation to infinite N.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

COMPLEX_TOL = 1e-3
MISMATCH_TOL = 1e-6
OFFSET_EPS = 1e-6
NEGATIVE_TOL = 1e-9  # relative to |mu_a - mu_b|^2 + tr(S_a) + tr(S_b)


class FrechetWarning(UserWarning):
    """A Fréchet distance was computed with flags (see the message)."""


@dataclass
class FrechetResult:
    value: float  # sqrtm route, clamped at 0
    value_eig: float  # eigenvalue route
    flags: list[str] = field(default_factory=list)


def gaussian_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ddof=1) covariance of ``(N, D)`` samples, float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) samples, got shape {x.shape}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product_eig(sigma_a: np.ndarray, sigma_b: np.ndarray,
                           sqrt_a: np.ndarray | None = None) -> float:
    """``tr((S_a S_b)^(1/2))`` through eigenvalues (``sqrt_a`` may be precomputed)."""
    root = _psd_sqrt(sigma_a) if sqrt_a is None else sqrt_a
    m = root @ sigma_b @ root
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_samples_fast(a: np.ndarray, b: np.ndarray) -> float:
    """FD of the Gaussians fitted to two sample sets (ddof=1), unclamped, without sqrtm.

    With ``Y = (X - mean) / sqrt(n - 1)`` the covariances are ``Y^T Y`` and
    ``tr((S_a S_b)^(1/2))`` is the nuclear norm of ``Y_a Y_b^T`` (an
    ``n_a x n_b`` matrix): exact and cheap when a side has fewer samples than
    dimensions; otherwise the ``D x D`` eigenvalue route is used.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    ya = (a - ma) / np.sqrt(a.shape[0] - 1)
    yb = (b - mb) / np.sqrt(b.shape[0] - 1)
    diff = ma - mb
    if min(a.shape[0], b.shape[0]) <= a.shape[1]:
        tr_sqrt = float(np.linalg.svd(ya @ yb.T, compute_uv=False).sum())
    else:
        tr_sqrt = trace_sqrt_product_eig(ya.T @ ya, yb.T @ yb)
    return float(diff @ diff + (ya * ya).sum() + (yb * yb).sum() - 2 * tr_sqrt)


def negative_beyond_tolerance(value: float, scale: float) -> bool:
    """True when ``value`` is below zero by more than round-off of terms of size ``scale``."""
    return value < -NEGATIVE_TOL * max(1.0, abs(scale))


def frechet_from_stats(mu_a, sigma_a, mu_b, sigma_b, n_samples: int | None = None) -> FrechetResult:
    """Fréchet distance between N(mu_a, sigma_a) and N(mu_b, sigma_b) with flags.

    ``n_samples`` (the smaller side's sample count) adds ``rank_deficient``
    when it does not exceed the dimension."""
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, np.float64)), np.atleast_1d(np.asarray(mu_b, np.float64))
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    # (D,) means and (D, D) covariances: mu_a.shape * 2 is (D, D)
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape or sigma_a.shape != mu_a.shape * 2:
        raise ValueError("means and covariances must share one dimension")
    flags: list[str] = []
    if n_samples is not None and n_samples <= mu_a.shape[0]:
        flags.append("rank_deficient")
    diff = mu_a - mu_b
    with warnings.catch_warnings():  # singular products are reported through the flags
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b)
        if not np.all(np.isfinite(covmean)):
            flags.append("offset")
            offset = np.eye(sigma_a.shape[0]) * OFFSET_EPS
            covmean = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        imag = float(np.abs(covmean.imag).max()) if covmean.size else 0.0
        if imag > COMPLEX_TOL * max(1.0, float(np.abs(covmean.real).max())):
            flags.append("complex")
        covmean = covmean.real
    tr_sqrtm = float(np.trace(covmean))
    tr_eig = trace_sqrt_product_eig(sigma_a, sigma_b)
    base = float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b))
    value, value_eig = base - 2 * tr_sqrtm, base - 2 * tr_eig
    if abs(tr_sqrtm - tr_eig) > MISMATCH_TOL * max(1.0, abs(tr_eig)):
        flags.append("mismatch")
    if negative_beyond_tolerance(value, base):
        flags.append("negative")
    return FrechetResult(max(value, 0.0), max(value_eig, 0.0), flags)


def frechet_result(a: np.ndarray, b: np.ndarray) -> FrechetResult:
    """:func:`frechet_from_stats` of Gaussians fitted to ``(N, D)`` arrays, with flags."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (N, D) arrays of one D, got {a.shape} and {b.shape}")
    n = min(a.shape[0], b.shape[0])
    if n < 2:
        raise ValueError(f"need (N >= 2, D) samples, got shapes {a.shape} and {b.shape}")
    if n <= a.shape[1]:
        # Singular covariances: sqrtm of their product is ill-conditioned (and slow at
        # D = 2048), while the nuclear-norm route is exact and costs an n x n SVD.
        value = frechet_samples_fast(a, b)
        scale = float(np.var(a, axis=0, ddof=1).sum() + np.var(b, axis=0, ddof=1).sum()
                      + ((a.mean(0) - b.mean(0)) ** 2).sum())
        flags = ["rank_deficient"] + (["negative"] if negative_beyond_tolerance(value, scale) else [])
        return FrechetResult(max(value, 0.0), max(value, 0.0), flags)
    mu_a, sigma_a = gaussian_stats(a)
    mu_b, sigma_b = gaussian_stats(b)
    return frechet_from_stats(mu_a, sigma_a, mu_b, sigma_b, n_samples=n)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance (float64) between Gaussians fitted to ``(N, D)`` arrays.

    Equal to fadtk's / frechet-audio-distance's value on the same arrays
    (unbiased covariances, ``sqrtm``). Emits a :class:`FrechetWarning` naming
    the flags (``rank_deficient``, ``negative``, ...) when there are any; use
    :func:`frechet_result` to get them as data."""
    result = frechet_result(a, b)
    if result.flags:
        warnings.warn(f"Fréchet distance flags: {', '.join(result.flags)} "
                      f"(N = {min(len(a), len(b))}, D = {np.shape(a)[1]})", FrechetWarning,
                      stacklevel=2)
    return result.value
