"""copbench numbers against oracles (issue 21): every flag of a Fréchet result fires.

The eigenvalue route of :func:`frechet_from_stats` is a cross-check of
``scipy.linalg.sqrtm``: its job is to notice when sqrtm is wrong. The tests make
sqrtm wrong (a fault injected into scipy, not into our code) and check that the
``mismatch`` flag fires and that the eigenvalue value still equals the closed form.
"""

import warnings

import numpy as np
import pytest
import scipy.linalg

from copbench.metrics.frechet import (COMPLEX_TOL, MISMATCH_TOL, NEGATIVE_TOL, OFFSET_EPS,
                                      FrechetWarning, frechet_distance, frechet_from_stats,
                                      frechet_result, gaussian_stats, negative_beyond_tolerance,
                                      trace_sqrt_product_eig)

MU_A, MU_B = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
VAR_A, VAR_B = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.25])
# closed form for diagonal covariances: |mu_a - mu_b|^2 + sum (sqrt(va) - sqrt(vb))^2
# = (1 + 0 + 6.25) + ((1 - 2)^2 + (2 - 1)^2 + 0) = 9.25
CLOSED_FORM = 9.25


def _scaled_sqrtm(monkeypatch, factor, imag=0.0):
    true_sqrtm = scipy.linalg.sqrtm

    def wrong(m, *args, **kwargs):
        root = true_sqrtm(m, *args, **kwargs) * factor
        return root + 1j * imag * np.eye(len(root)) if imag else root

    monkeypatch.setattr(scipy.linalg, "sqrtm", wrong)


def test_closed_form_and_no_flags():
    res = frechet_from_stats(MU_A, np.diag(VAR_A), MU_B, np.diag(VAR_B))
    assert res.value == pytest.approx(CLOSED_FORM, rel=1e-12)
    assert res.value_eig == pytest.approx(CLOSED_FORM, rel=1e-12)
    assert res.flags == []


def test_a_wrong_sqrtm_is_caught_by_the_eigenvalue_route(monkeypatch):
    # tr sqrt(Sa Sb) = 2 + 2 + 0.25 = 4.25; a sqrtm 1 % too large moves FD by -0.085
    _scaled_sqrtm(monkeypatch, 1.01)
    res = frechet_from_stats(MU_A, np.diag(VAR_A), MU_B, np.diag(VAR_B))
    assert res.flags == ["mismatch"]
    assert res.value_eig == pytest.approx(CLOSED_FORM, rel=1e-12)
    assert res.value == pytest.approx(CLOSED_FORM - 2 * 0.01 * 4.25, rel=1e-12)


def test_mismatch_tolerance_is_relative_1e_6(monkeypatch):
    _scaled_sqrtm(monkeypatch, 1 + 0.5 * MISMATCH_TOL)
    assert frechet_from_stats(MU_A, np.diag(VAR_A), MU_B, np.diag(VAR_B)).flags == []
    _scaled_sqrtm(monkeypatch, 1 + 2 * MISMATCH_TOL)
    assert "mismatch" in frechet_from_stats(MU_A, np.diag(VAR_A), MU_B, np.diag(VAR_B)).flags


def test_complex_flag_only_beyond_its_tolerance(monkeypatch):
    _scaled_sqrtm(monkeypatch, 1.0, imag=0.5 * COMPLEX_TOL * 2.0)  # |real| max is 2
    res = frechet_from_stats(MU_A, np.diag(VAR_A), MU_B, np.diag(VAR_B))
    assert res.flags == [] and res.value == pytest.approx(CLOSED_FORM, rel=1e-12)
    _scaled_sqrtm(monkeypatch, 1.0, imag=2 * COMPLEX_TOL * 2.0)
    res = frechet_from_stats(MU_A, np.diag(VAR_A), MU_B, np.diag(VAR_B))
    assert res.flags == ["complex"]
    assert res.value == pytest.approx(CLOSED_FORM, rel=1e-12)  # the real part is kept


def test_a_covariance_that_is_not_psd_is_flagged_complex_and_negative():
    # S_a = diag(1, -1) (not a covariance): sqrt(S_a S_b) has an imaginary entry i
    res = frechet_from_stats(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
    assert "complex" in res.flags
    # base = tr(Sa) + tr(Sb) = 0 + 2; the real part of the root has trace 1 -> FD = 0 exactly
    assert res.value == pytest.approx(0.0, abs=1e-12)
    # the eigenvalue route sees S_a's PSD part diag(1, 0): tr = 1 as well
    res = frechet_from_stats(np.zeros(1), np.diag([-1.0]), np.zeros(1), np.diag([-1.0]))
    # base -2, sqrt((-1)(-1)) = 1: FD = -4, flagged and clamped
    assert "negative" in res.flags and res.value == 0.0
    assert "mismatch" in res.flags  # eigenvalue route: PSD part of -1 is 0, tr = 0


def test_offset_retry_when_sqrtm_is_not_finite(monkeypatch):
    true_sqrtm = scipy.linalg.sqrtm
    calls = []

    def nan_first(m, *args, **kwargs):
        calls.append(np.array(m))
        return np.full_like(m, np.nan) if len(calls) == 1 else true_sqrtm(m, *args, **kwargs)

    monkeypatch.setattr(scipy.linalg, "sqrtm", nan_first)
    res = frechet_from_stats(MU_A, np.diag(VAR_A), MU_B, np.diag(VAR_B))
    assert res.flags == ["offset"]
    # the retry is (Sa + eps I)(Sb + eps I)
    assert np.allclose(calls[1], np.diag((VAR_A + OFFSET_EPS) * (VAR_B + OFFSET_EPS)), rtol=0, atol=1e-15)
    assert res.value == pytest.approx(CLOSED_FORM, abs=1e-5)


def test_round_off_below_zero_is_not_negative():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4))
    res = frechet_result(x, x.copy())
    assert res.flags == []
    assert res.value == pytest.approx(0.0, abs=1e-10)
    assert NEGATIVE_TOL == 1e-9


def test_rank_deficient_flag_and_warning():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((5, 6)) + 1.0
    res = frechet_result(a, b)
    assert res.flags == ["rank_deficient"]
    with pytest.warns(FrechetWarning, match="rank_deficient"):
        assert frechet_distance(a, b) == res.value
    # n_samples <= D flags it on the stats route too
    flags = frechet_from_stats(MU_A, np.diag(VAR_A), MU_B, np.diag(VAR_B), n_samples=3).flags
    assert flags == ["rank_deficient"]
    assert frechet_from_stats(MU_A, np.diag(VAR_A), MU_B, np.diag(VAR_B), n_samples=4).flags == []
    # no flags: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance(rng.standard_normal((40, 3)), rng.standard_normal((40, 3)))


# ---- the leaderboard frame's ranking -------------------------------------------------

def _results(model, metrics, **extra):
    return {"model": model, "metrics": metrics, "pairing": {"paired": 3, "extra": []}, **extra}


def test_best_models_by_direction_with_ties_and_incomplete_models():
    from copbench.frame import best_models, results_frame

    def entry(mean, higher=True):
        ci = [None, None] if mean is None else [mean - 1, mean + 1]
        return {"mean": mean, "ci95": ci, "n": 3, "higher_is_better": higher}

    results = [
        _results("a", {"si_sdr": entry(5.0), "fad_mel": entry(2.0, False), "midi_note_f1": entry(0.5)}),
        _results("b", {"si_sdr": entry(5.0), "fad_mel": entry(1.0, False), "midi_note_f1": entry(0.4)}),
        _results("c", {"si_sdr": entry(4.0), "fad_mel": entry(3.0, False), "midi_note_f1": entry(None)}),
        # the best numbers, but a clip failed: never best
        _results("d", {"si_sdr": entry(9.0), "fad_mel": entry(0.1, False), "midi_note_f1": entry(0.9)},
                 n_failed=1),
        _results("e", {"si_sdr": entry(9.5)}, complete=False),
    ]
    frame = results_frame(results)
    assert best_models(frame) == {"si_sdr": {"a", "b"}, "fad_mel": {"b"}, "midi_note_f1": {"a"}}
    row = frame[(frame.model == "a") & (frame.metric == "fad_mel")].iloc[0]
    assert (row["group"], row["higher_is_better"], row["ci_low"], row["ci_high"]) == \
        ("quality", False, 1.0, 3.0)
    assert frame[frame.model == "d"]["complete"].tolist() == [False] * 3
    assert frame[frame.model == "d"]["n_failed"].tolist() == [1] * 3


def test_flags_and_conventions_in_the_frame():
    from copbench.frame import failures, metric_group, results_frame

    res = _results("m", {"si_sdr": {"mean": 1.0, "ci95": [0, 2], "n": 4, "flags": {"mismatch": True, "offset": False},
                                    "conventions": {"both_silent": 2, "one_silent": 1},
                                    "seed_conventions": {"x": 1.0, "flag": True}, "slope": 0.5},
                         "fad_vggish": {"mean": 3.0, "flags": ["rank_deficient", "negative"]}},
                   errors={"c1": "broken"}, pairing={"paired": 4, "missing": ["c9", "c8"], "extra": ["z"]})
    frame = results_frame([res]).set_index("metric")
    assert frame.loc["si_sdr", "flags"] == ("mismatch",)
    assert frame.loc["fad_vggish", "flags"] == ("negative", "rank_deficient")
    assert frame.loc["si_sdr", "conventions"] == {"both_silent": 2, "one_silent": 1, "x": 1}
    assert frame.loc["si_sdr", "n_conventions"] == 4
    assert frame.loc["si_sdr", "extra"] == {"slope": 0.5}
    assert (frame.loc["si_sdr", "n_failed"], frame.loc["si_sdr", "n_missing"], frame.loc["si_sdr", "n_extra"]) == (1, 2, 1)
    assert not frame.loc["si_sdr", "complete"]
    assert failures({"n_failed": 0, "n_missing": 3, "errors": {"a": 1}}) == (0, 3)
    assert [metric_group(m) for m in ("mos_overall", "midi_note_f1", "av_align", "clip_score",
                                      "fad_mel", "si_sdr", "kl_passt", "other_thing")] == \
        ["listening", "midi", "alignment", "alignment", "quality", "quality", "quality", "other"]


# ---- SI-SDR: edges worked by hand ----------------------------------------------------

def test_si_sdr_silence_threshold_is_inclusive():
    import math

    from copbench.metrics.si_sdr import _TINY, si_sdr_with_convention

    x = math.sqrt(5e-21)
    quiet = np.array([x, -x])  # zero mean, energy exactly 1e-20
    assert float(quiet @ quiet) == _TINY == 1e-20
    loud = np.array([1.0, -1.0])
    assert si_sdr_with_convention(loud, quiet) == (-100.0, "one_silent")
    assert si_sdr_with_convention(quiet, loud) == (-100.0, "one_silent")
    assert si_sdr_with_convention(quiet, quiet) == (100.0, "both_silent")
    assert si_sdr_with_convention(loud, loud) == (100.0, None)


def test_si_sdr_is_clipped_to_plus_minus_100_db():
    from copbench.metrics.si_sdr import si_sdr_with_convention

    n = np.arange(64)
    reference = np.sin(n * 0.3)
    other = np.cos(n * 0.3) * np.sign(np.sin(n * 0.05) + 0.1)  # nearly orthogonal
    other = other - (other - other.mean()) @ (reference - reference.mean()) / \
        ((reference - reference.mean()) @ (reference - reference.mean())) * (reference - reference.mean())
    # 1e-6 of the reference plus a large orthogonal part: about -160 dB before clipping
    assert si_sdr_with_convention(1e-6 * reference + 1e2 * other, reference) == (-100.0, None)
    # the reference plus 1e-7 of noise: about +140 dB before clipping
    assert si_sdr_with_convention(reference + 1e-7 * other, reference) == (100.0, None)
    # in between, the value itself: 20 log10(|r| / |e|) = 20 log10(1 / 0.1) with e orthogonal
    e = other * np.linalg.norm(reference - reference.mean()) / np.linalg.norm(other - other.mean()) * 0.1
    value, convention = si_sdr_with_convention(reference + e, reference)
    assert convention is None and value == pytest.approx(20.0, abs=1e-6)
    # a quiet output (energy ~1e-11) that is mostly not the reference: -60 dB, not a copy
    e = e * 10
    value, convention = si_sdr_with_convention(1e-6 * (1e-3 * reference + e), reference)
    assert convention is None and value == pytest.approx(-60.0, abs=1e-6)


def test_si_sdr_target_at_the_silence_threshold_is_the_floor():
    import math

    from copbench.metrics.si_sdr import _TINY, si_sdr_with_convention

    # worked by hand: r = [1, -1, 0, 0], s = [c, -c, d, -d] (both zero mean); alpha = <s, r> / <r, r> = c,
    # so the target t = [c, -c, 0, 0] has energy 2 c^2 = 1e-20 exactly and the noise [0, 0, d, -d] has 2 d^2.
    c, d = math.sqrt(5e-21), 1e-12
    target = c * np.array([1.0, -1.0, 0.0, 0.0])
    assert float(target @ target) == _TINY
    # a target at the silence threshold is treated as silent (inclusive, as the silence test
    # on the inputs): -100 dB, not the 10 log10(1e-20 / 2e-24) = +37 dB of the bare ratio
    assert si_sdr_with_convention(np.array([c, -c, d, -d]), np.array([1.0, -1.0, 0.0, 0.0])) == (-100.0, None)


def test_si_sdr_settings_state_what_the_metric_does():
    from copbench.metrics.si_sdr import SiSdr, si_sdr_with_convention

    settings = SiSdr().settings()
    assert set(settings) == {"zero_mean", "floor_db", "ceil_db"}
    ref = np.sin(np.arange(50) * 0.4)
    # the recorded clip bounds are the values the degenerate cases give
    assert settings["floor_db"] == si_sdr_with_convention(ref, np.zeros(50))[0] == -100.0
    assert settings["ceil_db"] == si_sdr_with_convention(ref, ref)[0] == 100.0
    # zero_mean: a DC offset on either side changes nothing
    out = ref + 0.2 * np.cos(np.arange(50) * 1.3)
    assert settings["zero_mean"] is True
    assert si_sdr_with_convention(out + 3.0, ref - 2.0)[0] == pytest.approx(si_sdr_with_convention(out, ref)[0],
                                                                            abs=1e-9)


def test_si_sdr_inputs_are_flat_float64_and_finite():
    from copbench.metrics.si_sdr import si_sdr

    rng = np.random.default_rng(0)
    ref = rng.standard_normal(60).astype(np.float32)
    out = (ref + 0.3 * rng.standard_normal(60)).astype(np.float32)
    assert si_sdr(out, ref) == si_sdr(out.astype(np.float64), ref.astype(np.float64))
    assert si_sdr(out.reshape(6, 10), ref.reshape(6, 10)) == si_sdr(out, ref)
    assert si_sdr(out.reshape(6, 10), ref) == si_sdr(out, ref.reshape(3, 20))
    bad = ref.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        si_sdr(out, bad)
    with pytest.raises(ValueError, match="NaN"):
        si_sdr(bad, out)
    bad[3] = np.inf
    with pytest.raises(ValueError, match="NaN"):
        si_sdr(bad, out)
    with pytest.raises(ValueError, match="equal lengths"):
        si_sdr(out[:-1], ref)


# ---- the Fréchet distance's sample routes against an independent computation -----------

def _fd_by_definition(a, b):
    """|mu_a - mu_b|^2 + tr Sa + tr Sb - 2 tr (Sa^1/2 Sb Sa^1/2)^1/2 with ddof=1
    covariances, the square roots by symmetric eigendecomposition."""
    def psd_sqrt(m):
        w, v = np.linalg.eigh((m + m.T) / 2)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    sa = np.atleast_2d(np.cov(a, rowvar=False))
    sb = np.atleast_2d(np.cov(b, rowvar=False))
    root = psd_sqrt(sa)
    cross = np.trace(psd_sqrt(root @ sb @ root))
    diff = a.mean(axis=0) - b.mean(axis=0)
    return float(diff @ diff + np.trace(sa) + np.trace(sb) - 2 * cross)


@pytest.mark.parametrize("na,nb,d", [(4, 6, 9), (7, 5, 9), (3, 3, 5), (30, 40, 4), (12, 25, 3)])
def test_sample_routes_equal_the_definition(na, nb, d):
    from copbench.metrics.frechet import frechet_samples_fast

    rng = np.random.default_rng(na * 100 + nb)
    a = rng.standard_normal((na, d)) * np.linspace(0.5, 2.0, d) + 1.5
    b = rng.standard_normal((nb, d)) @ rng.standard_normal((d, d)) * 0.7 - 0.25
    expected = _fd_by_definition(a, b)
    # singular covariances (N <= D): the oracle's square roots of eigenvalues that are 0 up
    # to round-off (~1e-16) are ~1e-8, so it is only good to ~sqrt(machine epsilon)
    rel = 1e-7 if min(na, nb) <= d else 1e-9
    assert frechet_samples_fast(a, b) == pytest.approx(expected, rel=rel)
    result = frechet_result(a, b)
    assert result.value == pytest.approx(expected, rel=rel)
    assert ("rank_deficient" in result.flags) == (min(na, nb) <= d)
    # float32 input is taken in float64
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    assert frechet_samples_fast(a32, b32) == \
        frechet_samples_fast(a32.astype(np.float64), b32.astype(np.float64))


def test_two_samples_are_enough_and_shapes_are_checked():
    a, b = np.array([[0.0], [2.0]]), np.array([[1.0], [5.0]])
    # 1-D: (1 - 3)^2 + (sqrt 2 - sqrt 8)^2 = 4 + 2
    assert frechet_result(a, b).value == pytest.approx(6.0, rel=1e-12)
    with pytest.raises(ValueError):
        frechet_result(np.zeros(5), np.zeros((5, 1)))
    with pytest.raises(ValueError):
        frechet_result(np.zeros((5, 1)), np.zeros(5))
    with pytest.raises(ValueError):
        frechet_result(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError):
        frechet_result(np.zeros((1, 2)), np.zeros((5, 2)))


def test_the_warning_points_at_the_caller(monkeypatch):
    import sys

    # the frame that called frechet_distance, seen from inside it (under mutmut a trampoline
    # sits between the test and the function body, so the caller is found, not assumed)
    real_warn, callers = warnings.warn, []

    def spy(message, category=None, stacklevel=1, **kwargs):
        caller = sys._getframe(1).f_back
        callers.append((caller.f_code.co_filename, caller.f_lineno))
        return real_warn(message, category, stacklevel + 1, **kwargs)

    monkeypatch.setattr(warnings, "warn", spy)
    rng = np.random.default_rng(3)
    with pytest.warns(FrechetWarning) as caught:
        frechet_distance(rng.standard_normal((3, 5)), rng.standard_normal((3, 5)))
    assert (caught[0].filename, caught[0].lineno) == callers[0]
    import copbench.metrics.frechet as fr

    if not hasattr(fr, "x_frechet_distance__mutmut_orig"):  # not under mutmut: this test
        assert caught[0].filename == __file__
    assert "rank_deficient" in str(caught[0].message) and "N = 3, D = 5" in str(caught[0].message)


def test_small_distances_and_small_scales(monkeypatch):
    from copbench.metrics.frechet import frechet_samples_fast

    # FD below 1 on both routes, and the eigenvalue value equals the value
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 6)) * 0.1
    b = rng.standard_normal((5, 6)) * 0.1 + 0.05
    res = frechet_result(a, b)
    assert 0 < res.value < 1 and res.value_eig == res.value == pytest.approx(frechet_samples_fast(a, b))
    mu, var_a, var_b = np.zeros(2), np.array([0.04, 0.01]), np.array([0.01, 0.04])
    res = frechet_from_stats(mu, np.diag(var_a), mu + 0.1, np.diag(var_b))
    # 2 * 0.01 + (0.2 - 0.1)^2 + (0.1 - 0.2)^2 = 0.04
    assert res.value == pytest.approx(0.04, rel=1e-9) and res.value_eig == pytest.approx(0.04, rel=1e-9)
    # tolerances are absolute below a trace (or root) of 1: tr sqrt = 0.04, |root| max 0.02
    _scaled_sqrtm(monkeypatch, 1 + 1.5e-6 / 0.04)
    assert frechet_from_stats(mu, np.diag(var_a), mu, np.diag(var_b)).flags == ["mismatch"]
    monkeypatch.undo()
    _scaled_sqrtm(monkeypatch, 1.0, imag=1.5e-3)
    assert frechet_from_stats(mu, np.diag(var_a), mu, np.diag(var_b)).flags == ["complex"]


def test_stats_are_taken_in_float64_and_shapes_checked():
    mu_a, mu_b = MU_A.astype(np.float32) / 3, MU_B.astype(np.float32) / 7
    sa, sb = np.diag(VAR_A / 3).astype(np.float32), np.diag(VAR_B / 7).astype(np.float32)
    f32 = frechet_from_stats(mu_a, sa, mu_b, sb)
    f64 = frechet_from_stats(mu_a.astype(np.float64), sa.astype(np.float64),
                             mu_b.astype(np.float64), sb.astype(np.float64))
    assert (f32.value, f32.value_eig) == (f64.value, f64.value_eig)
    with pytest.raises(ValueError):
        frechet_from_stats(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2))
    with pytest.raises(ValueError):
        frechet_from_stats(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError):
        frechet_from_stats(np.zeros(3), np.eye(2), np.zeros(3), np.eye(2))


def test_shapes_are_named_in_the_error_and_covariances_must_be_square():
    # each mismatch raises the function's own message (not numpy's, from a later step)
    for args in [(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2)),
                 (np.zeros(2), np.eye(2), np.zeros(2), np.eye(3)),
                 (np.zeros(3), np.eye(2), np.zeros(3), np.eye(2)),
                 # not square: (3, 2) covariances with 3-dim means
                 (np.zeros(3), np.ones((3, 2)), np.zeros(3), np.ones((3, 2))),
                 (np.zeros(2), np.ones((3, 2)), np.zeros(2), np.ones((3, 2))),
                 # means must be vectors
                 (np.zeros((2, 1)), np.eye(2), np.zeros((2, 1)), np.eye(2))]:
        with pytest.raises(ValueError, match="share one dimension"):
            frechet_from_stats(*args)


def test_gaussian_stats_in_float64_of_2d_samples():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((200, 3)) * 1000 + np.pi).astype(np.float32)
    mu, sigma = gaussian_stats(x)
    # taken in float64: a float32 mean of these rows differs from it by ~1e-5
    x64 = x.astype(np.float64)
    assert mu.dtype == np.float64 and np.array_equal(mu, x64.mean(axis=0))
    assert np.allclose(sigma, np.cov(x64.T), rtol=1e-13, atol=0)  # features are the columns (ddof=1)
    for bad in (np.zeros(5), np.zeros((1, 3)), np.zeros((2, 3, 1))):
        with pytest.raises(ValueError, match="need"):
            gaussian_stats(bad)


def test_negative_beyond_tolerance_at_its_edges():
    # the tolerance is NEGATIVE_TOL times max(1, |scale|): strict at the edge
    assert not negative_beyond_tolerance(-NEGATIVE_TOL, 0.5)
    assert negative_beyond_tolerance(-2 * NEGATIVE_TOL, 0.5)
    assert not negative_beyond_tolerance(-3 * NEGATIVE_TOL, 4.0)   # within 4 tol
    assert negative_beyond_tolerance(-5 * NEGATIVE_TOL, 4.0)
    assert negative_beyond_tolerance(-1.8 * NEGATIVE_TOL, 1.5)     # beyond 1.5 tol
    assert not negative_beyond_tolerance(-1.2 * NEGATIVE_TOL, -1.5)  # |scale|


def test_identical_large_sets_are_zero_and_not_flagged_negative():
    # a law: FD(a, a) = 0. With values ~1e7 (N <= D, the nuclear-norm route) the terms are ~1e14
    # and round-off leaves about +-0.1 (some of these seeds round below zero), far inside the
    # tolerance, which scales with both sets' variance (1e-9 of ~1e15)
    for seed in range(10):
        a = np.random.default_rng(seed).standard_normal((3, 5)) * 1e7
        res = frechet_result(a, a.copy())
        assert res.flags == ["rank_deficient"]
        assert 0.0 <= res.value <= 1e-12 * 2 * np.var(a, axis=0, ddof=1).sum()


def test_a_precomputed_root_is_used():
    sa, sb, sc = np.diag([1.0, 4.0]), np.diag([4.0, 9.0]), np.diag([9.0, 16.0])
    # tr((Sa Sb)^(1/2)) = 1 * 2 + 2 * 3 = 8; with Sc's root given instead of Sa's: 3 * 2 + 4 * 3 = 18
    assert trace_sqrt_product_eig(sa, sb) == pytest.approx(8.0, rel=1e-12)
    assert trace_sqrt_product_eig(sa, sb, sqrt_a=np.diag([3.0, 4.0])) == pytest.approx(18.0, rel=1e-12)


def test_flag_edges_of_the_sqrtm_route(monkeypatch):
    import copbench.metrics.frechet as fr

    # 1 x 1 covariances 0.25 and 0.25 (D = 1): tr sqrt(Sa Sb) = 0.25 by both routes
    mu, s = np.zeros(1), np.array([[0.25]])
    true_sqrtm = scipy.linalg.sqrtm
    # the mismatch test is strict: a difference of exactly MISMATCH_TOL * max(1, 0.25) is no mismatch
    monkeypatch.setattr(fr, "trace_sqrt_product_eig", lambda *a, **k: 0.0)
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m, *a, **k: np.array([[MISMATCH_TOL]]))
    assert "mismatch" not in frechet_from_stats(mu, s, mu, s).flags
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m, *a, **k: np.array([[2 * MISMATCH_TOL]]))
    assert "mismatch" in frechet_from_stats(mu, s, mu, s).flags
    # the complex test is strict too: an imaginary part of exactly COMPLEX_TOL * max(1, 0.25) is kept quiet
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m, *a, **k: true_sqrtm(m) + 1j * COMPLEX_TOL)
    assert "complex" not in frechet_from_stats(mu, s, mu, s).flags
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda m, *a, **k: true_sqrtm(m) + 2j * COMPLEX_TOL)
    assert "complex" in frechet_from_stats(mu, s, mu, s).flags


def test_metric_groups_and_per_clip_rows():
    from copbench.frame import metric_group, per_clip_frame

    groups = {"listening": ["mos_overall", "mos_sync"],
              "midi": ["midi_note_f1", "midi_frame_f1_seed"],
              "alignment": ["av_align", "clip_score", "imagebind_score", "ib_av", "desync_offset",
                            "sync_conf"],
              "quality": ["fad_vggish", "fd_panns", "si_sdr", "clap_score", "is_panns", "kl_passt",
                          "mel_distance", "snr_db"],
              "other": ["rtf", "params", "xfad_vggish", "a_mos_overall"]}
    for group, metrics in groups.items():
        for metric in metrics:
            assert metric_group(metric) == group, metric
    results = [{"model": "m2", "per_clip": {"c2": {"si_sdr": 1, "midi_note_f1": 0.5, "note": "x"},
                                            "c1": {"si_sdr": -2.5}}},
               {"model": "m1", "metrics": {}}]
    frame = per_clip_frame(results)
    assert frame.to_dict("records") == [
        {"model": "m2", "clip": "c1", "metric": "si_sdr", "group": "quality", "value": -2.5},
        {"model": "m2", "clip": "c2", "metric": "midi_note_f1", "group": "midi", "value": 0.5},
        {"model": "m2", "clip": "c2", "metric": "si_sdr", "group": "quality", "value": 1.0}]
    assert list(per_clip_frame([]).columns) == ["model", "clip", "metric", "group", "value"]


def test_results_folder_to_frame_with_defaults(tmp_path):
    import json

    from copbench.errors import BenchError
    from copbench.frame import RESULT_COLUMNS, load_per_clip, load_results, read_results_dir
    from copbench.results import provenance_line

    with pytest.raises(BenchError) as caught:
        read_results_dir(tmp_path)
    assert caught.value.item == str(tmp_path)
    minimal = {"model": "zeta", "metrics": {"si_sdr": {"mean": 2, "n": 3, "seed_conventions": {"x": 1},
                                                       "convention_note": "text"}},
               "per_clip": {"c1": {"si_sdr": 2.0}}}
    (tmp_path / "b.json").write_text(json.dumps(minimal))
    (tmp_path / "a.json").write_text(json.dumps({"model": "alpha", "metrics": {}, "path": "kept"}))
    rows = read_results_dir(tmp_path)
    assert [r["model"] for r in rows] == ["alpha", "zeta"]
    assert rows[0]["path"] == "kept" and rows[1]["path"] == str(tmp_path / "b.json")
    frame = load_results(tmp_path)
    assert list(frame.columns) == RESULT_COLUMNS
    row = frame.iloc[0].to_dict()
    # defaults of a minimal entry: higher is better, complete, nothing paired, no interval
    assert row["higher_is_better"] is True and row["complete"] is True and row["n_paired"] == 0
    assert row["n"] == 3 and row["mean"] == 2.0 and frame["mean"].dtype == np.float64
    assert np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
    assert row["extra"] == {"convention_note": "text"} and row["conventions"] == {"x": 1}
    assert row["provenance"] == provenance_line(minimal) and row["path"] == str(tmp_path / "b.json")
    assert load_per_clip(tmp_path).to_dict("records") == [
        {"model": "zeta", "clip": "c1", "metric": "si_sdr", "group": "quality", "value": 2.0}]
    not_complete = results_frame_of({**minimal, "complete": False})
    assert not not_complete["complete"].iloc[0]


def results_frame_of(res):
    from copbench.frame import results_frame

    return results_frame([res])


def test_paper_columns_are_the_papers_table():
    """arXiv 2503.22200's table: FAD (and FAD-inf), CLIP score, AV-Align, SI-SDR, MIDI note
    precision/recall/F1 and MOS; every other column is behind --metrics all."""
    from copbench.frame import is_paper_column
    paper = ["fad_vggish", "fad_vggish_inf", "fad_clap", "clip_score", "av_align", "si_sdr",
             "midi_note_precision", "midi_note_recall", "midi_note_f1", "mos_overall", "mos_sync"]
    other = ["fad_vggish_clip_fd", "fd_panns", "kl_panns", "is_panns", "clap_score",
             "midi_note_f1_offset", "midi_frame_f1", "midi_frame_f1_seed", "a_mos_overall",
             "xfad_vggish", "si_sdr_db"]
    assert [m for m in paper if not is_paper_column(m)] == []
    assert [m for m in other if is_paper_column(m)] == []


def test_tracks_come_v2a_then_tv2a_then_the_others_by_name():
    import pandas as pd
    from copbench.frame import tracks
    frame = pd.DataFrame({"track": ["zeta", "tv2a", "alpha", "v2a", "unspecified", "tv2a"],
                          "model": list("abcdef")})
    got = tracks(frame)
    assert [t for t, _ in got] == ["v2a", "tv2a", "alpha", "unspecified", "zeta"]
    assert [list(rows["model"]) for _, rows in got] == [["d"], ["b", "f"], ["c"], ["e"], ["a"]]
    # without the paper's tracks: by name
    assert [t for t, _ in tracks(frame[frame.track.isin(["zeta", "alpha"])])] == ["alpha", "zeta"]


def test_best_models_skips_entries_that_are_not_measurements():
    """Flagged entries, entries with values set by a convention and distances below 0
    are never best; a distance of exactly 0 (or between 0 and 1) is a measurement."""
    from copbench.frame import best_models, is_distance, results_frame

    def entry(mean, higher=True, **extra):
        return {"mean": mean, "ci95": [mean - 1, mean + 1], "n": 3, "higher_is_better": higher, **extra}

    results = [
        _results("flagged", {"si_sdr": entry(9.0, flags=["too_few_clips"]),
                             "fad_mel": entry(0.1, False, conventions={"both_silent": 1}),
                             "kl_panns": entry(-0.5, False), "is_panns": entry(-1.0, False)}),
        _results("plain", {"si_sdr": entry(5.0), "fad_mel": entry(0.5, False),
                           "kl_panns": entry(0.0, False), "is_panns": entry(2.0, False)}),
        _results("other", {"si_sdr": entry(4.0), "fad_mel": entry(0.7, False),
                           "kl_panns": entry(0.2, False), "is_panns": entry(3.0, False)}),
    ]
    frame = results_frame(results)
    # is_panns is not a distance: its negative value is a measurement and the lowest
    assert best_models(frame) == {"si_sdr": {"plain"}, "fad_mel": {"plain"},
                                  "kl_panns": {"plain"}, "is_panns": {"flagged"}}
    assert [m for m in ("fad_vggish", "fd_panns", "kl_passt", "kl_panns") if not is_distance(m)] == []
    assert [m for m in ("si_sdr", "is_panns", "clap_score", "midi_note_f1") if is_distance(m)] == []
    # nothing complete: nothing is best
    assert best_models(results_frame([_results("x", {"si_sdr": entry(1.0)}, n_failed=2)])) == {}
    # two tracks in one frame: an error, never a ranking across tracks
    two = results_frame([_results("a", {"si_sdr": entry(1.0)}, track="v2a"),
                         _results("b", {"si_sdr": entry(2.0)}, track="tv2a")])
    with pytest.raises(ValueError, match="one track"):
        best_models(two)


def test_conventions_of_several_counters_add_up_and_a_flag_may_be_one_name():
    from copbench.frame import results_frame
    res = _results("m", {"midi_note_f1": {"mean": 0.5, "flags": "few_clips",
                                          "conventions": {"notes_one_empty": 2, "silent_output": 1},
                                          "seed_conventions": {"notes_one_empty": 3}}})
    row = results_frame([res]).iloc[0]
    assert row["flags"] == ("few_clips",)
    assert row["conventions"] == {"notes_one_empty": 5, "silent_output": 1}
    assert row["n_conventions"] == 6


def test_a_frame_without_entries_still_has_every_column():
    from copbench.frame import RESULT_COLUMNS, results_frame
    empty = results_frame([{"model": "a", "metrics": {}}])
    assert list(empty.columns) == RESULT_COLUMNS and len(empty) == 0
    assert empty["mean"].dtype == "float64"
    row = results_frame([_results("b", {"si_sdr": {"mean": 1}}, track="v2a")]).iloc[0]
    assert row["track"] == "v2a" and row["mean"] == 1.0
    assert results_frame([_results("c", {"si_sdr": {"mean": 1}})]).iloc[0]["track"] == "unspecified"
