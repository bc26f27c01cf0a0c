"""Fréchet distance against the closed form for Gaussians."""

import numpy as np
import pytest

from copbench.metrics import frechet_distance, frechet_from_stats
from copbench.metrics.frechet import gaussian_stats, trace_sqrt_product_eig


def closed_form_diag(mu_a, var_a, mu_b, var_b):
    return float(np.sum((mu_a - mu_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b)))


def test_closed_form_from_stats_diagonal():
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    res = frechet_from_stats(mu_a, np.diag(var_a), mu_b, np.diag(var_b))
    assert res.value == pytest.approx(closed_form_diag(mu_a, var_a, mu_b, var_b), rel=1e-10)
    assert res.value_eig == pytest.approx(res.value, rel=1e-10)
    assert res.flags == []


def test_closed_form_full_covariance_commuting():
    # Same eigenvectors: tr sqrt(Sa Sb) = sum sqrt(la * lb).
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    la, lb = np.array([1, 2, 3, 4, 5.0]), np.array([0.5, 0.5, 2, 8, 1.0])
    sa, sb = q @ np.diag(la) @ q.T, q @ np.diag(lb) @ q.T
    expected = float(la.sum() + lb.sum() - 2 * np.sqrt(la * lb).sum())
    assert frechet_from_stats(np.zeros(5), sa, np.zeros(5), sb).value == pytest.approx(expected, rel=1e-9)
    assert trace_sqrt_product_eig(sa, sb) == pytest.approx(np.sqrt(la * lb).sum(), rel=1e-9)


def test_samples_converge_to_closed_form():
    rng = np.random.default_rng(0)
    mu_a, mu_b = np.array([0.0, 0.0]), np.array([3.0, -1.0])
    sd_a, sd_b = np.array([1.0, 2.0]), np.array([0.5, 2.0])
    a = mu_a + sd_a * rng.standard_normal((200_000, 2))
    b = mu_b + sd_b * rng.standard_normal((200_000, 2))
    expected = closed_form_diag(mu_a, sd_a ** 2, mu_b, sd_b ** 2)  # 10 + 0.25 = 10.25
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.01)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert isinstance(frechet_distance(a, b), float)


def test_rank_deficient_is_flagged_and_finite():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 20)), rng.standard_normal((5, 20))
    mu_a, s_a = gaussian_stats(a)
    mu_b, s_b = gaussian_stats(b)
    res = frechet_from_stats(mu_a, s_a, mu_b, s_b, n_samples=5)
    assert "rank_deficient" in res.flags
    assert np.isfinite(res.value) and res.value >= 0
    assert res.value == pytest.approx(res.value_eig, rel=1e-4, abs=1e-6)


def test_shape_errors():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((1, 3)), np.zeros((10, 3)))


def test_fad_bootstrap_gram_route_equals_full_route():
    # The cheap n x n route used by the FAD bootstrap equals the D x D one.
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((300, 40))
    _, sigma_r = gaussian_stats(ref)
    x = rng.standard_normal((12, 40)) * 2 + 1
    centred = x - x.mean(axis=0)
    gram = centred @ sigma_r @ centred.T / (x.shape[0] - 1)
    cheap = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0, None)).sum()
    full = trace_sqrt_product_eig(sigma_r, np.cov(x, rowvar=False))
    # the D x D route adds sqrt of ~1e-14 round-off eigenvalues in the null space
    assert cheap == pytest.approx(full, rel=1e-6)
