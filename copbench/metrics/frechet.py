"""The Fréchet distance between two Gaussians, in float64, with checks.

``FD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))``.

The matrix square root is taken with ``scipy.linalg.sqrtm`` and checked
against an eigenvalue route, ``tr((S_a S_b)^(1/2)) = sum_i sqrt(l_i)`` with
``l_i`` the eigenvalues of the symmetric PSD matrix ``S_a^(1/2) S_b S_a^(1/2)``.
When sqrtm is not finite it is retried with ``1e-6 I`` added to both
covariances (as pytorch-fid does). Results carry flags instead of being
silently fixed: ``complex`` (sqrtm's imaginary part > 1e-3 of its magnitude),
``negative`` (FD < 0 before clamping to 0), ``mismatch`` (the two routes differ
by more than 1e-6 relative), ``offset`` (the eps retry was needed),
``rank_deficient`` (fewer samples than dimensions).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

COMPLEX_TOL = 1e-3
MISMATCH_TOL = 1e-6
OFFSET_EPS = 1e-6


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


def frechet_from_stats(mu_a, sigma_a, mu_b, sigma_b, n_samples: int | None = None) -> FrechetResult:
    """Fréchet distance between N(mu_a, sigma_a) and N(mu_b, sigma_b) with flags."""
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, np.float64)), np.atleast_1d(np.asarray(mu_b, np.float64))
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape or sigma_a.shape[0] != mu_a.shape[0]:
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
    if value < 0:
        flags.append("negative")
    return FrechetResult(max(value, 0.0), max(value_eig, 0.0), flags)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance (float64) between Gaussians fitted to ``(N, D)`` arrays."""
    mu_a, sigma_a = gaussian_stats(a)
    mu_b, sigma_b = gaussian_stats(b)
    return frechet_from_stats(mu_a, sigma_a, mu_b, sigma_b).value
