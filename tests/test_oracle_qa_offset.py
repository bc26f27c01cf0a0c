"""copdata.qa.offset's building blocks worked by hand (issue 21: mutation testing).

The end-to-end offset laws (a shift of the audio moves the estimate by as much,
a sub-frame shift is recovered within a tenth of a frame) are in
``test_oracle_copdata.py`` and ``test_properties.py``; here each step on inputs
small enough to compute on paper.
"""

import numpy as np
import pytest

from copdata.notes import Note
from copdata.qa import offset as qo


def test_shrink_grey_is_the_luma_block_mean():
    rgb = np.zeros((4, 8, 3), np.uint8)
    rgb[:, :, 0] = 100  # red only: luma 0.299 * 100
    rgb[:2, :4, 1] = 200  # top-left block also green: + 0.587 * 200
    got = qo.shrink_grey(rgb, factor=2)
    assert got.shape == (2, 4) and got.dtype == np.float32
    assert got[0, 0] == pytest.approx(29.9 + 117.4) and got[1, 3] == pytest.approx(29.9)
    # 2-D frames are grey already; a frame smaller than one block is kept as is
    grey = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(qo.shrink_grey(grey, factor=2), [[2.5, 4.5]])  # rows 0-1 only
    assert np.array_equal(qo.shrink_grey(grey, factor=4), grey)
    assert qo.shrink_grey(rgb[..., :3]).shape == (1, 2)  # the default factor is 4


def test_motion_signal_by_hand():
    a = np.zeros((8, 16), np.float32)
    b = a.copy()
    b[:, 12:] = 40.0  # the right quarter changes by 40 grey levels
    motion = qo.motion_signal([a, b, b], bands=2)
    # shrunk by 4: 2 x 4 blocks; the change |b - a| averaged over rows: (0, 0, 0, 40);
    # two strips of two blocks: (0, 20); the third frame does not change
    assert motion.tolist() == [[0.0, 0.0], [0.0, 20.0], [0.0, 0.0]]
    assert qo.motion_signal([a, b]).tolist() == [[0.0], [10.0]]  # one band by default
    # a frame of another size starts again from 0
    assert qo.motion_signal([a, np.zeros((4, 16), np.float32)], bands=1).tolist() == [[0.0], [0.0]]


def test_key_bands_by_white_key_position():
    # A0 is the first of the 52 white keys, C8 the last; a black key sits between whites
    assert qo.key_band(21, 8) == 0 and qo.key_band(108, 8) == 7
    assert qo.key_band(10, 8) == 0 and qo.key_band(120, 8) == 7  # clamped to the piano
    # C4 (MIDI 60) is white key 24 (0-based 23): (23 + 0.5) / 52 * 4 = 1.8 -> strip 1
    assert qo.key_band(60, 4) == 1
    # with two strips per white key (104): C4's centre 23.5 -> 47; C#4 sits on the C4-D4
    # border, 24 whites - 0.5 + 0.5 = 24.0 -> 48; D4's centre 24.5 -> 49
    assert [qo.key_band(p, 104) for p in (60, 61, 62)] == [47, 48, 49]


def test_note_events_are_shared_between_the_two_nearest_frames():
    # fps 10: frame i's centre is at (i + 0.5) / 10 s. An onset at 0.17 s is frame position
    # 1.7 - 0.5 = 1.2: 0.8 of it in frame 1, 0.2 in frame 2; its end at 0.45 s is 4.0:
    # all of RELEASE_WEIGHT x velocity in frame 4
    sig = qo.note_onset_signal([Note(0.17, 0.45, 60, 100)], 10.0, 0, 6)
    assert sig[:, 0] == pytest.approx([0, 80, 20, 0, 50, 0])
    assert qo.RELEASE_WEIGHT == 0.5
    # first_frame shifts the window; events outside it are dropped; bands by key
    sig = qo.note_onset_signal([Note(0.17, 0.45, 21, 100), Note(0.25, 0.9, 108, 10)], 10.0, 2, 3, bands=2)
    assert sig.shape == (3, 2)
    assert sig[:, 0] == pytest.approx([20, 0, 50])  # frames 2, 3, 4
    assert sig[:, 1] == pytest.approx([10, 0, 0])   # onset at position 2.0 -> frame 2 only


def test_normalise_detrends_long_signals_and_zeroes_flat_ones():
    flat = qo._normalise(np.full((20, 2), 3.0))
    assert np.array_equal(flat, np.zeros((20, 2)))
    short = qo._normalise(np.array([[1.0], [2.0], [3.0]]))  # up to 9 rows: z-score only
    assert short[:, 0] == pytest.approx(np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3))
    # a straight line is all trend: detrended (edges padded) it is flat inside
    line = qo._normalise(np.arange(30, dtype=float)[:, None])
    assert np.allclose(line[5:25, 0], line[5, 0])
    assert line.std() == pytest.approx(1.0) and line.mean() == pytest.approx(0.0, abs=1e-12)


def test_peak_parabola_by_hand():
    # (0, 1, 0.5): curvature 0 - 2 + 0.5 = -1.5, shift 0.5 (0 - 0.5) / -1.5 = 1/6
    pos, best = qo._peak(np.array([0.0, 1.0, 0.5]))
    assert best == 1 and pos == pytest.approx(1 + 1 / 6)
    assert qo._peak(np.array([0.5, 1.0, 0.0]))[0] == pytest.approx(1 - 1 / 6)
    assert qo._peak(np.array([1.0, 0.5, 0.0])) == (0.0, 0)  # at an end: no refinement
    assert qo._peak(np.array([0.0, 0.5, 1.0])) == (2.0, 2)
    assert qo._peak(np.array([0.0, 1.0, 1.0, 0.0]))[0] == pytest.approx(1.5)  # a tie: half way
    assert qo._peak(np.array([0.9, 1.0, 0.95]))[0] == pytest.approx(1 + 0.5 * (0.9 - 0.95) / (0.9 - 2 + 0.95))
    assert qo._peak(np.array([1.0, 1.0, 1.0])) == (0.0, 0)  # flat: no shift


def test_confidence_is_the_peak_over_the_best_far_lag():
    fps, n = 10.0, 40
    rng = np.random.default_rng(0)
    motion = np.abs(rng.standard_normal((n, 1))) + 0.5
    max_lag = 10
    onsets = np.zeros((n + 2 * max_lag, 1))
    onsets[max_lag + 2: max_lag + 2 + n] = motion  # the audio 2 frames late
    offset, confidence = qo.estimate_offset(motion, onsets, fps, max_offset_s=1.0)
    assert offset == pytest.approx(0.2, abs=0.02)
    corr = qo.offset_curve(motion, onsets, max_lag)
    lags = np.arange(-max_lag, max_lag + 1)
    best = int(np.argmax(corr))
    far = np.abs(lags - lags[best]) > qo.CONFIDENCE_EXCLUSION_FRAMES
    assert confidence == pytest.approx(np.clip(corr[best] - max(corr[far].max(), 0), 0, 1), abs=1e-4)
    assert 0 < confidence < 1


def test_every_white_key_has_its_own_strip_of_52_and_a_black_key_its_right_neighbours():
    """Oracle: pretty_midi's note names (a white key has no sharp): with 52 strips the 52
    white keys A0..C8 take strips 0..51 in order; a black key lies on the border of its
    two white neighbours and takes one of their strips."""
    import pretty_midi
    white = [p for p in range(21, 109) if "#" not in pretty_midi.note_number_to_name(p)]
    black = [p for p in range(21, 109) if p not in white]
    assert len(white) == 52
    assert [qo.key_band(p, 52) for p in white] == list(range(52))
    assert all(qo.key_band(p, 52) in (qo.key_band(p - 1, 52), qo.key_band(p + 1, 52)) for p in black)
    # the ends with two strips per white key: A0's centre 0.5 -> 1, C8's 51.5 -> 103
    assert qo.key_band(21, 104) == 1 and qo.key_band(108, 104) == 103 == qo.key_band(120, 104)


def test_note_events_in_one_frame_add_up():
    # two onsets at frame position 1.0 exactly (0.15 s at 10 fps), one band by default
    sig = qo.note_onset_signal([Note(0.15, 0.55, 60, 40), Note(0.15, 0.55, 64, 60)], 10.0, 0, 4)
    assert sig.shape == (4, 1) and sig[:, 0] == pytest.approx([0, 100, 0, 0])


def test_normalise_detrends_from_ten_rows_and_scales_all_columns_together():
    # 9 rows: no detrending, each column centred on its own mean, one sd for the whole
    x = np.stack([np.arange(9.0), 10 + 2 * np.arange(9.0)], axis=1)
    got = qo._normalise(x)
    centred = x - x.mean(axis=0)
    assert got == pytest.approx(centred / centred.std())
    # 10 rows: a straight line loses its trend (9-frame moving average, edges padded)
    line = qo._normalise(np.arange(10.0)[:, None])[:, 0]
    assert np.allclose(line[4:6], line[4]) and not np.allclose(line, line[0])


def test_source_offset_of_no_curves_and_of_agreeing_clips():
    assert qo.source_offset([], 25.0, 10) == {"offset_s": 0.0, "half_width_s": None,
                                             "second_peak": None, "agree": 0.0, "clips": 0,
                                             "notes": 10, "confident": False}
    lags = np.arange(-10, 11)
    curve = np.exp(-0.5 * (lags - 2.0) ** 2)  # symmetric about lag +2: no sub-frame shift
    out = qo.source_offset([curve, curve, curve, None], 25.0, 40)
    # 2 frames at 25 fps; every draw the same curve: no width; the best lag more than 3
    # frames away (6 or -2) over the peak: exp(-8), 0.0003 to four places; all clips agree
    assert out == {"offset_s": 0.08, "half_width_s": 0.0, "second_peak": round(float(np.exp(-8)), 4),
                   "agree": 1.0, "clips": 3, "notes": 40, "confident": True}
    assert not qo.source_offset([curve, curve, curve], 25.0, 29)["confident"]  # too few notes
    assert not qo.source_offset([curve, curve], 25.0, 40)["confident"]  # too few clips


def test_estimate_offset_input_guards():
    fps, max_lag = 10.0, 1
    motion = np.array([[0.0], [1.0], [0.0], [1.0]])  # four frames: the fewest it takes
    onsets = np.zeros((4 + 2 * max_lag, 1))
    onsets[max_lag:max_lag + 4] = motion
    offset, _ = qo.estimate_offset(motion, onsets, fps, max_offset_s=0.1)
    assert offset == pytest.approx(0.0, abs=0.05)
    with pytest.raises(ValueError):
        qo.estimate_offset(motion[:3], onsets[:5], fps, max_offset_s=0.1)
    with pytest.raises(ValueError):
        qo.estimate_offset(motion, onsets[:, :0], fps, max_offset_s=0.1)
    with pytest.raises(ValueError):
        qo.estimate_offset(motion, motion, 0.0, max_offset_s=0.1)
    # half a frame per second is a valid (slow) frame rate: one lag each way is 2 s
    slow = qo.estimate_offset(motion, onsets, 0.5, max_offset_s=2.0)
    assert slow[0] == pytest.approx(0.0, abs=1.0)


def test_onset_strength_lands_in_the_frame_that_holds_the_onset():
    # clicks at 0.2 s and 0.61 s, 16 kHz, 25 fps: frames floor(0.2 * 25) = 5 and
    # floor(0.61 * 25) = 15 hold them; each frame keeps its interval's maximum strength
    sr, fps = 16000, 25.0
    audio = np.zeros(sr, np.float32)
    for t in (0.2, 0.61):
        i = int(t * sr)
        audio[i:i + 160] = np.hanning(160) * np.sign(np.sin(np.arange(160)))
    sig = qo.onset_signal(audio, sr, fps, 25)
    assert sig.shape == (25,) and sig.min() >= 0
    assert sorted(np.argsort(sig)[-2:].tolist()) == [5, 15]
    assert qo.onset_signal(audio, sr, fps, 10)[5] == sig[5]  # fewer frames: the same values
