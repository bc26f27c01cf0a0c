"""Laws of the numeric core, checked with Hypothesis (issue 21).

Each test states its law; the inputs are drawn by Hypothesis (a bounded,
derandomized-in-CI profile: see ``tests/conftest.py``).
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from copbench.metrics.frechet import frechet_result
from copbench.metrics.si_sdr import si_sdr
from copbench.stats import bootstrap_ci, paired_bootstrap_ci
from copdata.notes import TICKS_PER_SECOND, Note, midi_bytes, read_midi, snap_notes
from copdata.qa.offset import estimate_offset
from copdata.roll import render_roll
from copdata.scoring import frame_scores, note_scores

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


# ---- SI-SDR --------------------------------------------------------------------------

@st.composite
def signal_pairs(draw):
    n = draw(st.integers(8, 64))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal(n)
    noise = draw(st.floats(0.01, 3.0))
    output = reference + noise * rng.standard_normal(n)
    return output, reference


@given(signal_pairs(), st.floats(1e-3, 1e3), st.sampled_from([1.0, -1.0]), st.floats(-5, 5))
def test_si_sdr_is_invariant_to_scaling_and_offsetting_the_output(pair, scale, sign, dc):
    output, reference = pair
    base = si_sdr(output, reference)
    # law: SI-SDR(a * s + c, r) = SI-SDR(s, r) for a > 0 (the mean is removed first)
    assert si_sdr(scale * output + dc, reference) == pytest.approx(base, abs=1e-9)
    # the reference's scale does not matter either
    assert si_sdr(output, scale * reference) == pytest.approx(base, abs=1e-9)
    if sign < 0:
        # a flipped output projects onto -r: same energies, same value
        assert si_sdr(-output, reference) == pytest.approx(base, abs=1e-9)


@given(signal_pairs())
def test_si_sdr_equals_the_definition(pair):
    output, reference = pair
    s, r = output - output.mean(), reference - reference.mean()
    target = (s @ r) / (r @ r) * r
    expected = 10 * np.log10((target @ target) / ((s - target) @ (s - target)))
    assert si_sdr(output, reference) == pytest.approx(float(np.clip(expected, -100, 100)), abs=1e-9)


# ---- Fréchet distance ----------------------------------------------------------------

@st.composite
def sample_sets(draw):
    d = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    na, nb = draw(st.integers(d + 2, 40)), draw(st.integers(d + 2, 40))
    shift = draw(st.floats(-3, 3))
    a = rng.standard_normal((na, d)) * draw(st.floats(0.1, 3))
    b = rng.standard_normal((nb, d)) + shift
    return a, b


@given(sample_sets())
def test_frechet_distance_is_symmetric_nonnegative_and_zero_on_identical_sets(sets):
    a, b = sets
    ab, ba = frechet_result(a, b), frechet_result(b, a)
    assert ab.value == pytest.approx(ba.value, rel=1e-7, abs=1e-9)
    assert ab.value >= 0.0
    assert frechet_result(a, a.copy()).value == pytest.approx(0.0, abs=1e-9)
    # translating both sets together changes nothing; translating one adds |t|^2
    t = np.arange(1, a.shape[1] + 1, dtype=float)
    assert frechet_result(a + t, b + t).value == pytest.approx(ab.value, rel=1e-7, abs=1e-9)
    assert frechet_result(a + t, a).value == pytest.approx(float(t @ t), rel=1e-9)


@given(sample_sets())
def test_frechet_distance_of_one_dimension_is_the_closed_form(sets):
    a, b = sets
    a, b = a[:, :1], b[:, :1]
    ma, mb = a.mean(), b.mean()
    sa, sb = a.std(ddof=1), b.std(ddof=1)
    # 1-D Gaussians: (ma - mb)^2 + (sa - sb)^2
    assert frechet_result(a, b).value == pytest.approx((ma - mb) ** 2 + (sa - sb) ** 2,
                                                       rel=1e-9, abs=1e-12)


# ---- rolls from notes ----------------------------------------------------------------

FPS = 25


@st.composite
def tick_notes(draw, max_ticks=960 * 3):
    """Notes on the MIDI tick grid (1/960 s), so the oracle below can be exact."""
    notes = []
    # 192 ticks = 0.2 s = 5 frames: times on a frame boundary are drawn often
    on_boundary = st.integers(0, max_ticks // 192 - 1).map(lambda k: 192 * k)
    for _ in range(draw(st.integers(0, 12))):
        start = draw(st.one_of(st.integers(0, max_ticks - 1), on_boundary))
        length = draw(st.one_of(st.integers(1, 700), on_boundary.filter(bool)))
        notes.append((start, start + length, draw(st.integers(21, 108)), draw(st.integers(1, 127))))
    return notes


def _as_notes(ticks):
    return [Note(s / TICKS_PER_SECOND, e / TICKS_PER_SECOND, p, v) for s, e, p, v in ticks]


@given(tick_notes())
@example([(192, 384, 60, 100), (100, 192, 61, 50), (10, 11, 62, 7)])
def test_a_roll_has_a_key_on_exactly_where_a_note_overlaps_the_frame(ticks):
    frames = 3 * FPS + 5
    roll = render_roll(_as_notes(ticks), frames, FPS)
    # oracle in exact fractions: frame i covers [i/25, (i+1)/25); a cell holds the
    # largest velocity of the notes of its key that overlap the frame
    expected = np.zeros((frames, 88), np.uint8)
    for s, e, p, v in ticks:
        start, end = Fraction(s, 960), Fraction(e, 960)
        for i in range(frames):
            if start < Fraction(i + 1, FPS) and end > Fraction(i, FPS):
                expected[i, p - 21] = max(expected[i, p - 21], v)
    assert np.array_equal(roll, expected)


@given(tick_notes())
def test_notes_written_to_midi_and_read_back_give_the_same_notes_and_roll(ticks):
    # MIDI cannot hold two sounding notes of one key (note-offs pair with the earliest
    # note-on): the law is for notes that do not overlap on a key, which is what a
    # build writes (copdata.dataset.store.derive_views derives every view from the read-back)
    kept, busy_until = [], {}
    for s, e, p, v in sorted(ticks):
        if s >= busy_until.get(p, -1):
            kept.append((s, e, p, v))
            busy_until[p] = e
    notes = snap_notes(_as_notes(kept))
    back = read_midi(midi_bytes(notes))
    # overlapping notes of one key may be merged or split by MIDI; keys and frames may not
    assert render_roll(back, 3 * FPS + 20, FPS).astype(bool).tolist() == \
        render_roll(notes, 3 * FPS + 20, FPS).astype(bool).tolist()
    singles = {n.pitch for n in notes if sum(m.pitch == n.pitch for m in notes) == 1}
    # times come back on the tick grid (pretty_midi's float arithmetic may differ in the last bit)
    assert [n for n in snap_notes(back) if n.pitch in singles] == \
        [n for n in notes if n.pitch in singles]
    assert all(abs(b.start - n.start) < 1e-12 and abs(b.end - n.end) < 1e-12
               for b, n in zip([n for n in back if n.pitch in singles],
                               [n for n in notes if n.pitch in singles]))


# ---- scoring -------------------------------------------------------------------------

@given(tick_notes())
def test_notes_score_perfectly_against_themselves(ticks):
    notes = snap_notes(_as_notes(ticks))
    scores = note_scores(notes, notes)
    assert scores["f1"] == 1.0 and scores["precision"] == 1.0 and scores["recall"] == 1.0


@given(hnp.arrays(np.uint8, (6, 88), elements=st.sampled_from([0, 0, 0, 64])),
       hnp.arrays(np.uint8, (6, 88), elements=st.sampled_from([0, 0, 0, 90])))
def test_frame_scores_swap_precision_and_recall_when_the_rolls_swap(ref, est):
    forward, backward = frame_scores(ref, est), frame_scores(est, ref)
    assert forward["precision"] == backward["recall"]
    assert forward["recall"] == backward["precision"]
    assert forward["f1"] == pytest.approx(backward["f1"])
    tp = int(((ref > 0) & (est > 0)).sum())
    n_ref, n_est = int((ref > 0).sum()), int((est > 0).sum())
    if n_ref and n_est:
        assert forward["precision"] == tp / n_est and forward["recall"] == tp / n_ref
        assert forward["f1"] == pytest.approx(2 * tp / (n_ref + n_est))


# ---- bootstrap -----------------------------------------------------------------------

@given(st.lists(finite, min_size=1, max_size=30), st.integers(0, 1000))
def test_bootstrap_interval_contains_the_sample_mean(values, seed):
    lo, hi = bootstrap_ci(values, seed=seed, label="law")
    mean = float(np.mean(values))
    slack = 1e-9 * max(1.0, max(abs(v) for v in values))
    assert lo - slack <= mean <= hi + slack
    assert min(values) - slack <= lo <= hi <= max(values) + slack
    # the same seed and label give the same interval
    assert bootstrap_ci(values, seed=seed, label="law") == (lo, hi)


@given(st.lists(finite, min_size=2, max_size=20), st.floats(-50, 50))
def test_paired_bootstrap_of_a_constant_shift_is_that_shift(values, shift):
    a = np.array(values)
    b = a + shift
    out = paired_bootstrap_ci(a, b, seed=1, label="shift")
    d = b - a  # the per-clip differences in float64, all equal to shift up to rounding
    assert out["diff"] == pytest.approx(shift, abs=1e-9)
    assert d.min() - 1e-12 <= out["ci95"][0] <= out["ci95"][1] <= d.max() + 1e-12
    assert out["n"] == len(values)
    if (d > 0).all():
        assert out["frac_resamples_positive"] == 1.0
    elif (d <= 0).all():
        assert out["frac_resamples_positive"] == 0.0


# ---- AV offset -----------------------------------------------------------------------

def _bumps(times, positions, width=1.2):
    return np.exp(-0.5 * ((positions[:, None] - times[None, :]) / width) ** 2).sum(axis=1)


@given(st.integers(0, 10_000), st.floats(-20.0, 20.0))
def test_audio_later_by_a_fraction_of_a_frame_moves_the_offset_by_it(seed, late_frames):
    frames, max_lag, fps = 200, 25, 25.0
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(1.0, 7.0, 50))  # distinct events, irregular (not periodic)
    motion = _bumps(times, np.arange(frames, dtype=float))[:, None]
    onsets = _bumps(times + late_frames, np.arange(frames + 2 * max_lag, dtype=float) - max_lag)[:, None]
    offset, confidence = estimate_offset(motion, onsets, fps)
    # law: the estimate is the lateness, within a tenth of a frame
    assert abs(offset * fps - late_frames) <= 0.1
    assert confidence > 0
