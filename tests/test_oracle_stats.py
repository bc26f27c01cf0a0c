"""copbench.stats against its definition and small cases worked by hand (issue 21).

The definition (module docstring): ``n_boot`` resamples of the clips with
replacement from ``numpy.random.default_rng([seed, crc32(label)])``, each
resample's mean, the ``(1 -/+ level) / 2`` percentiles. Two routes compute it
(:func:`bootstrap_ci` draws all resamples at once, :func:`bootstrap_statistic_ci`
one at a time); they must agree with each other and with the definition.
"""

import zlib

import numpy as np
import pytest

from copbench.stats import (bootstrap_ci, bootstrap_statistic_ci, paired_bootstrap_ci,
                            rng_for, summarize)

X = np.random.default_rng(0).standard_normal(23) * 3 + 1


def _definition(values, seed, label, n_boot, level):
    rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
    means = [values[rng.integers(0, len(values), size=len(values))].mean() for _ in range(n_boot)]
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


@pytest.mark.parametrize("level", [0.95, 0.8, 0.5])
@pytest.mark.parametrize("seed,label,n_boot", [(0, "", 1000), (7, "midi_note_f1", 300)])
def test_both_bootstrap_routes_equal_the_definition(seed, label, n_boot, level):
    expected = _definition(X, seed, label, n_boot, level)
    assert bootstrap_ci(X, seed=seed, label=label, n_boot=n_boot, level=level) == \
        pytest.approx(expected, rel=1e-12)
    assert bootstrap_statistic_ci(len(X), lambda idx: X[idx].mean(), seed=seed, label=label,
                                  n_boot=n_boot, level=level) == pytest.approx(expected, rel=1e-12)


def test_two_values_give_the_exact_resample_distribution():
    # [0, 1]: resample means 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4
    assert bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)
    assert bootstrap_ci([0.0, 1.0], level=0.4) == (0.5, 0.5)  # 30th and 70th percentiles
    # a matrix of values is the flat sample
    assert bootstrap_ci(np.array([[0.0, 1.0], [2.0, 3.0]]), seed=2) == \
        bootstrap_ci([0.0, 1.0, 2.0, 3.0], seed=2)


def test_values_are_taken_in_float64():
    x32 = np.linspace(0.1, 0.9, 17, dtype=np.float32) ** 3
    assert bootstrap_ci(x32, seed=1) == bootstrap_ci(x32.astype(np.float64), seed=1)
    assert summarize(x32, 1, "a")["mean"] == float(x32.astype(np.float64).mean())


def test_statistic_route_edge_cases_and_default_resamples():
    assert bootstrap_statistic_ci(1, lambda idx: 4.0 + len(idx)) == (5.0, 5.0)
    assert bootstrap_statistic_ci(0, lambda idx: float(len(idx))) == (0.0, 0.0)
    calls = []
    bootstrap_statistic_ci(5, lambda idx: calls.append(idx) or float(idx.sum()))
    assert len(calls) == 200 and all(len(c) == 5 and c.min() >= 0 and c.max() < 5 for c in calls)
    assert {int(i) for c in calls for i in c} == {0, 1, 2, 3, 4}


def test_summary_forwards_its_seed_and_label():
    s = summarize(X, seed=5, label="q")
    assert s == {"mean": float(X.mean()), "ci95": list(bootstrap_ci(X, seed=5, label="q")), "n": 23}
    assert summarize(X, seed=6, label="q")["ci95"] != s["ci95"]
    assert summarize(X, seed=5, label="r")["ci95"] != s["ci95"]


def test_streams_depend_on_seed_and_label():
    draw = lambda seed, label: rng_for(seed, label).integers(0, 1 << 30, 4).tolist()  # noqa: E731
    assert draw(1, "a") == draw(1, "a")
    assert draw(1, "a") != draw(2, "a") and draw(1, "a") != draw(1, "b")
    assert draw(1, "é") == np.random.default_rng([1, zlib.crc32("é".encode("utf-8"))]).integers(
        0, 1 << 30, 4).tolist()


def test_paired_bootstrap_worked_by_hand():
    # differences b - a = [3, -1]: resample means 3, 1, -1 with probabilities 1/4, 1/2, 1/4
    out = paired_bootstrap_ci([0.0, 1.0], [3.0, 0.0], seed=0, label="d")
    assert out["diff"] == 1.0 and out["n"] == 2
    assert out["ci95"] == [-1.0, 3.0]
    assert out["frac_resamples_positive"] == pytest.approx(0.75, abs=0.05)
    # its interval is the bootstrap of the differences with the same settings
    a, b = X, X[::-1] + 0.3
    out = paired_bootstrap_ci(a, b, seed=4, label="m", n_boot=300, level=0.8)
    assert out["ci95"] == list(bootstrap_ci(b - a, seed=4, label="m", n_boot=300, level=0.8))


def test_paired_bootstrap_of_one_clip():
    assert paired_bootstrap_ci([1.0], [1.5]) == {"diff": 0.5, "ci95": [0.5, 0.5], "n": 1,
                                                 "frac_resamples_positive": 1.0}
    assert paired_bootstrap_ci([1.0], [1.0])["frac_resamples_positive"] == 0.0  # not > 0
    assert paired_bootstrap_ci([1.0], [0.5])["frac_resamples_positive"] == 0.0
    assert paired_bootstrap_ci([0.0], [0.25])["frac_resamples_positive"] == 1.0
    with pytest.raises(ValueError):
        paired_bootstrap_ci([], [])
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_defaults_are_seed_0_and_the_empty_label():
    assert bootstrap_ci(X) == bootstrap_ci(X, seed=0, label="") != bootstrap_ci(X, seed=1)
    assert bootstrap_ci(X) != bootstrap_ci(X, label="XXXX")
    stat = lambda idx: X[idx].mean()  # noqa: E731
    assert bootstrap_statistic_ci(len(X), stat) == bootstrap_statistic_ci(len(X), stat, seed=0, label="")
    assert bootstrap_statistic_ci(len(X), stat) != bootstrap_statistic_ci(len(X), stat, seed=1)
    assert bootstrap_statistic_ci(len(X), stat) != bootstrap_statistic_ci(len(X), stat, label="XXXX")
    a, b = X, X[::-1]
    assert paired_bootstrap_ci(a, b) == paired_bootstrap_ci(a, b, seed=0, label="")
    assert paired_bootstrap_ci(a, b)["ci95"] != paired_bootstrap_ci(a, b, seed=1)["ci95"]
    assert paired_bootstrap_ci(a, b)["ci95"] != paired_bootstrap_ci(a, b, label="XXXX")["ci95"]


def test_two_clips_are_resampled_by_the_statistic_route():
    values = np.array([0.0, 1.0])
    assert bootstrap_statistic_ci(2, lambda idx: values[idx].mean()) == (0.0, 1.0)


def test_paired_differences_are_taken_in_float64():
    a32 = np.linspace(0.1, 0.9, 17, dtype=np.float32) ** 3
    b32 = np.linspace(0.2, 0.7, 17, dtype=np.float32) ** 2
    expected = b32.astype(np.float64) - a32.astype(np.float64)
    out = paired_bootstrap_ci(a32, b32, seed=3)
    assert out["diff"] == float(expected.mean())
    assert out["ci95"] == list(bootstrap_ci(expected, seed=3))
