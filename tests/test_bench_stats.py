"""Seeded bootstrap CIs."""

import numpy as np
import pytest

from copbench.stats import bootstrap_ci, paired_bootstrap_ci, summarize


def test_bootstrap_is_seeded_and_sensible():
    x = np.random.default_rng(0).normal(5.0, 1.0, size=400)
    a, b = bootstrap_ci(x, seed=1, label="m"), bootstrap_ci(x, seed=1, label="m")
    assert a == b
    assert bootstrap_ci(x, seed=2, label="m") != a
    lo, hi = a
    assert lo < x.mean() < hi
    # ~ mean +- 1.96 * sd / sqrt(n)
    assert hi - lo == pytest.approx(2 * 1.96 * x.std() / np.sqrt(x.size), rel=0.15)
    assert bootstrap_ci([3.0]) == (3.0, 3.0)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_summary_and_paired():
    s = summarize([1.0, 2.0, 3.0], seed=0, label="x")
    assert s["mean"] == 2.0 and s["n"] == 3 and s["ci95"][0] <= 2.0 <= s["ci95"][1]
    a = np.arange(50, dtype=float)
    r = paired_bootstrap_ci(a, a + 1.0, seed=0, label="d")
    assert r["diff"] == 1.0 and r["ci95"] == [1.0, 1.0] and r["frac_resamples_positive"] == 1.0
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1.0], [1.0, 2.0])
