"""FAD-inf (fadtk's estimator) and the spread of FD at N, on Gaussians with known
distances; fadtk's own ``score_inf`` is the oracle in tests_parity/test_parity_fad_inf.py."""

import warnings

import numpy as np
import pytest

from copbench.metrics import frechet_distance, frechet_distance_inf
from copbench.metrics.fad_inf import fad_inf, spread_at_n
from copbench.metrics.frechet import FrechetWarning, frechet_result


def _fadtk_by_hand(reference, evaluation, seed):
    """fadtk score_inf written out with numpy's own cov and sqrtm (a second route)."""
    import scipy.linalg
    mu_r, cov_r = reference.mean(0), np.cov(reference, rowvar=False)
    rng = np.random.RandomState(seed)
    ns = [int(n) for n in np.linspace(500, len(evaluation), 25)]
    fds = []
    for n in ns:
        e = evaluation[rng.choice(len(evaluation), size=n, replace=True)]
        mu, cov = e.mean(0), np.cov(e, rowvar=False)
        covmean = scipy.linalg.sqrtm(cov_r @ cov).real
        fds.append((mu - mu_r) @ (mu - mu_r) + np.trace(cov_r) + np.trace(cov) - 2 * np.trace(covmean))
    slope, intercept = np.polyfit(1 / np.array(ns), fds, 1)
    return intercept, fds


def test_fad_inf_is_fadtks_estimator_by_hand():
    rng = np.random.default_rng(0)
    ref, ev = rng.standard_normal((3000, 16)), rng.standard_normal((1500, 16)) * 1.1 + 0.2
    want, fds = _fadtk_by_hand(ref, ev, seed=3)
    res = fad_inf(ref, ev, seed=3)
    assert [n for n, _ in res.points] == [int(n) for n in np.linspace(500, 1500, 25)]
    assert np.allclose([fd for _, fd in res.points], fds, rtol=1e-9)
    assert res.value == pytest.approx(want, rel=1e-9)
    assert frechet_distance_inf(ref, ev, seed=3)[0] == res.value  # the public name, value first
    assert fad_inf(ref, ev, seed=4).value != res.value  # the seed is used


def test_fad_inf_extrapolates_to_the_evaluated_sample():
    # Same 32-d Gaussian, 2000 samples a side: FD at N holds both sides' 1/N bias (0.30).
    # fadtk draws the evaluated frames *with replacement*, so n -> infinity extrapolates to
    # the evaluated sample's empirical distribution: the value stays near FD at N (the
    # issue's same-distribution figure for fadtk: 0.294), it does not go to 0.
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2000, 32)), rng.standard_normal((2000, 32))
    plain = frechet_distance(a, b)
    value, res = frechet_distance_inf(a, b, seed=0)
    assert plain == pytest.approx(0.30, abs=0.03)
    assert value == pytest.approx(plain, abs=0.05)
    assert res.r2 > 0.8 and "negative" not in res.flags


def test_few_frames_and_negative_are_flagged():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((4000, 3))
    res = fad_inf(ref, rng.standard_normal((40, 3)), seed=0)
    assert "few_frames" in res.flags and res.points[0][0] == 500 and res.points[-1][0] == 40
    same = fad_inf(ref, ref.copy(), seed=0)  # evaluation = reference: intercept ~ 0, either sign
    assert ("negative" in same.flags) == (same.value < 0)


def test_spread_at_n_identical_sets_zero_width_and_never_below_zero():
    rng = np.random.default_rng(2)
    clips = {f"c{i}": rng.standard_normal((5, 6)) for i in range(8)}
    res = spread_at_n(clips, dict(clips), seed=0)
    assert res.value == pytest.approx(0.0, abs=1e-9) and res.ci95[1] == pytest.approx(0.0, abs=1e-9)
    a = {f"c{i}": rng.standard_normal((20, 4)) for i in range(8)}
    b = {f"c{i}": rng.standard_normal((20, 4)) for i in range(8)}
    res = spread_at_n(a, b, seed=0)
    assert 0.0 <= res.ci95[0] <= res.value <= res.ci95[1]


def test_too_few_clips_is_flagged():
    rng = np.random.default_rng(4)
    res = spread_at_n({"x": rng.standard_normal((6, 3)), "y": rng.standard_normal((6, 3))},
                      {"x": rng.standard_normal((6, 3)), "y": rng.standard_normal((6, 3))})
    assert "too_few_clips" in res.flags and res.ci95[0] <= res.value == res.ci95[1]


def test_frechet_distance_warns_on_flags():
    rng = np.random.default_rng(3)
    with pytest.warns(FrechetWarning, match="rank_deficient"):
        frechet_distance(rng.standard_normal((10, 20)), rng.standard_normal((10, 20)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance(rng.standard_normal((100, 3)), rng.standard_normal((100, 3)))


def test_rank_deficient_route_equals_the_eigenvalue_route():
    from copbench.metrics.frechet import frechet_from_stats, gaussian_stats
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((10, 20)), rng.standard_normal((12, 20)) + 0.3
    res = frechet_result(a, b)
    ref = frechet_from_stats(*gaussian_stats(a), *gaussian_stats(b), n_samples=10)
    assert res.flags == ["rank_deficient"]
    assert res.value == pytest.approx(ref.value_eig, rel=1e-6)


def test_rank_deficient_draws_equal_the_full_rank_route():
    # draws of fewer frames than dimensions take the nuclear-norm route
    rng = np.random.default_rng(8)
    ref, ev = rng.standard_normal((700, 40)), rng.standard_normal((30, 40)) + 0.1
    want, fds = _fadtk_by_hand(ref, ev, seed=0)
    res = fad_inf(ref, ev, seed=0, min_n=500)
    assert np.allclose([fd for _, fd in res.points], fds, rtol=1e-7)
