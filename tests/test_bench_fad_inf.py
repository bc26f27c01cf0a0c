"""FAD at infinite N and honest FAD intervals, on Gaussians with known distances."""

import warnings

import numpy as np
import pytest

from copbench.metrics import frechet_distance, frechet_distance_inf
from copbench.metrics.fad_inf import fad_inf_units
from copbench.metrics.frechet import FrechetWarning, frechet_result


def test_fad_inf_removes_the_finite_n_bias():
    # The check: same 32-d standard Gaussian on both sides, 2000 samples each.
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2000, 32)), rng.standard_normal((2000, 32))
    plain = frechet_distance(a, b)
    value, (lo, hi) = frechet_distance_inf(a, b, seed=0)
    assert plain == pytest.approx(0.3, abs=0.05)  # ~ D(D+1)/(2N) per side of bias
    assert abs(value) < 0.05
    assert lo <= value <= hi and lo <= 0.0 <= hi
    assert frechet_distance_inf(a, b, seed=0) == (value, (lo, hi))  # seeded


def _rows(x, tag):
    return {f"{tag}{i}": x[i:i + 1] for i in range(len(x))}


def test_interval_coverage_simulation_known_distance():
    """Seeded simulation: a ~ N(0, I), b ~ N(mu, I) with |mu|^2 = 0.5 (FD = 0.5 exactly).
    The infinite-N interval must cover 0.5 in at least 90% of 60 replications; the
    point estimate must be unbiased to within its standard error, unlike FD at N."""
    rng = np.random.default_rng(7)
    d, n, delta, reps = 4, 150, 0.5, 60
    mu = np.zeros(d)
    mu[0] = np.sqrt(delta)
    covered, values, at_n = 0, [], []
    for r in range(reps):
        a, b = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + mu
        res = fad_inf_units(_rows(a, "a"), _rows(b, "b"), seed=r)
        assert res.ci95[0] <= res.value <= res.ci95[1]
        assert res.ci95_at_n[0] <= res.value_at_n <= res.ci95_at_n[1]
        covered += res.ci95[0] <= delta <= res.ci95[1]
        values.append(res.value)
        at_n.append(res.value_at_n)
    coverage = covered / reps
    print(f"coverage of the FAD-inf 95% interval: {coverage:.3f} ({reps} replications)")
    assert coverage >= 0.9
    se = np.std(values) / np.sqrt(reps)
    assert abs(np.mean(values) - delta) < 3 * se
    assert np.mean(at_n) - delta > 3 * np.std(at_n) / np.sqrt(reps)  # FD at N is biased up


def test_paired_identical_sets_give_zero_with_zero_width():
    rng = np.random.default_rng(2)
    clips = {f"c{i}": rng.standard_normal((5, 6)) for i in range(8)}
    res = fad_inf_units(clips, dict(clips), seed=0)
    assert res.value == pytest.approx(0.0, abs=1e-9)
    assert res.ci95[1] - res.ci95[0] == pytest.approx(0.0, abs=1e-9)
    assert res.n_units == {"a": 8, "b": 8} and res.n_frames == {"a": 40, "b": 40}
    assert "negative" not in frechet_result(np.concatenate(list(clips.values())),
                                            np.concatenate(list(clips.values()))).flags


def test_frechet_distance_warns_on_flags():
    rng = np.random.default_rng(3)
    with pytest.warns(FrechetWarning, match="rank_deficient"):
        frechet_distance(rng.standard_normal((10, 20)), rng.standard_normal((10, 20)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance(rng.standard_normal((100, 3)), rng.standard_normal((100, 3)))


def test_too_few_clips_is_flagged():
    rng = np.random.default_rng(4)
    res = fad_inf_units({"x": rng.standard_normal((6, 3)), "y": rng.standard_normal((6, 3))},
                        {"x": rng.standard_normal((6, 3)), "y": rng.standard_normal((6, 3))})
    assert "too_few_clips" in res.flags and res.ci95[0] == res.ci95[1] == res.value


def test_rank_deficient_route_equals_the_eigenvalue_route():
    from copbench.metrics.frechet import frechet_from_stats, gaussian_stats
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((10, 20)), rng.standard_normal((12, 20)) + 0.3
    res = frechet_result(a, b)
    ref = frechet_from_stats(*gaussian_stats(a), *gaussian_stats(b), n_samples=10)
    assert res.flags == ["rank_deficient"]
    assert res.value == pytest.approx(ref.value_eig, rel=1e-6)


def test_interval_at_n_never_goes_below_zero_and_holds_its_value():
    # Same distribution on both sides, few clips: value +- 1.96 sd would reach far below 0.
    rng = np.random.default_rng(3)
    a = {f"c{i}": rng.standard_normal((20, 4)) for i in range(8)}
    b = {f"c{i}": rng.standard_normal((20, 4)) for i in range(8)}
    res = fad_inf_units(a, b, seed=0)
    lo, hi = res.ci95_at_n
    assert lo >= 0.0 and lo <= res.value_at_n <= hi
