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


# ---- each step's edge cases, worked by hand (the survivors of a mutation run) ----

def test_shrink_grey_drops_alpha_and_keeps_narrow_or_integer_frames_whole():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 2] = 100  # blue only: luma 0.114 * 100; alpha is not light
    rgba[..., 3] = 255
    assert qo.shrink_grey(rgba, factor=2) == pytest.approx(np.full((2, 2), 11.4))
    # a grey uint8 frame is read as float32 grey levels, block means of 2 x 2
    grey = np.array([[0, 2, 4, 6], [2, 4, 6, 8]], np.uint8)
    got = qo.shrink_grey(grey, factor=2)
    assert got.dtype == np.float32 and got.tolist() == [[2.0, 6.0]]
    # narrower than one block but tall enough: nothing to average, kept as it is
    narrow = np.arange(24, dtype=np.uint8).reshape(8, 3)
    kept = qo.shrink_grey(narrow, factor=4)
    assert kept.dtype == np.float32 and np.array_equal(kept, narrow)


def test_motion_strips_without_a_column_are_zero():
    # 4 x 8 frames shrink by 4 to 1 x 2 blocks; 4 strips of 2 columns: edges 0, 0, 1, 1, 2
    # (np.linspace(0, 2, 5) truncated), so strips 0 and 2 hold no column: 0, not a NaN
    a = np.zeros((4, 8), np.float32)
    right, left = a.copy(), a.copy()
    right[:, 4:] = 40.0
    left[:, :4] = 40.0
    assert qo.motion_signal([a, right], bands=4).tolist() == [[0.0] * 4, [0.0, 0.0, 0.0, 40.0]]
    assert qo.motion_signal([a, left], bands=4).tolist() == [[0.0] * 4, [0.0, 40.0, 0.0, 0.0]]
    # frames of two sizes take the frame-by-frame route: the same strips
    assert qo.motion_signal([np.zeros((8, 8), np.float32), a, right], bands=4).tolist() == \
        [[0.0] * 4, [0.0] * 4, [0.0, 0.0, 0.0, 40.0]]


def test_key_band_above_c8_is_c8_with_four_strips_per_white_key():
    # 208 strips: C8's centre 51.5 white keys -> 51.5 / 52 * 208 = 206; a pitch above
    # the piano is read as C8, not as the key after it (52 -> 208, clamped to 207)
    assert qo.key_band(108, 208) == 206 and qo.key_band(109, 208) == 206 and qo.key_band(127, 208) == 206
    assert qo.key_band(21, 208) == 2  # A0's centre 0.5 -> 2


def _reference_onset_signal(audio, sr, fps, num_frames):
    """librosa's onset strength at a 5 ms hop, each value put in the frame holding its
    time by exact integer arithmetic (fps a whole number): frame (j * hop * fps) // sr."""
    import librosa

    hop = max(round(0.005 * sr), 1)
    strength = librosa.onset.onset_strength(y=np.asarray(audio, np.float32), sr=sr, hop_length=hop)
    out = np.zeros(num_frames)
    for j, s in enumerate(strength):
        frame = (j * hop * int(fps)) // sr
        if frame < num_frames:
            out[frame] = max(out[frame], s)
    return out


def test_onset_signal_is_librosas_strength_binned_by_frame():
    # 32 kHz: a 160-sample hop, 8 hops a frame; librosa's strength starts with
    # 1 + 2048 // 320 = 7 hops of padding (35 ms), so frame 0 (0-40 ms) gets one value
    sr, fps = 32000, 25.0
    rng = np.random.default_rng(3)
    audio = np.zeros(sr // 2, np.float32)
    # noise bursts at 3 ms and on frame boundaries (every 1280 samples), so frame 0
    # and the first hop of a frame carry strength; the one at frame 10 is past the end
    for start in (96, 2560, 5120, 8960, 12800):
        audio[start:start + 800] = rng.standard_normal(800) * np.hanning(800)
    got = qo.onset_signal(audio, sr, fps, 10)
    ref = _reference_onset_signal(audio, sr, fps, 10)
    assert got.shape == (10,) and got[0] > 0
    assert np.array_equal(got, ref)
    # 16-bit PCM: the same grey levels of sound, read as float
    pcm = np.round(audio * 1000).astype(np.int16)
    assert np.array_equal(qo.onset_signal(pcm, sr, fps, 10), _reference_onset_signal(pcm, sr, fps, 10))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_onset_signal_hop_at_a_low_rate_is_one_sample():
    # 200 Hz: the 5 ms hop is exactly one sample (12 s: longer than librosa's 2048-sample
    # frame, which a shorter signal leaves without any strength)
    sr, fps = 200, 25.0
    audio = np.random.default_rng(0).standard_normal(2400).astype(np.float32)
    got = qo.onset_signal(audio, sr, fps, 300)
    assert (got > 0).sum() > 100
    assert np.array_equal(got, _reference_onset_signal(audio, sr, fps, 300))


def test_offset_curve_by_hand_with_a_flat_and_a_faint_window():
    # motion (0, 1, 0, 1) z-scores to v = (-1, 1, -1, 1) (no detrending up to 9 rows)
    motion = np.array([0.0, 1.0, 0.0, 1.0])
    # onsets (1, 1, 1, 1, 0, 2) centre to (0, 0, 0, 0, -1, 1) / sd, sd = 1/sqrt(3):
    # lag -1: the window (0, 0, 0, 0) is flat: 0; lag 0: (0, 0, 0, -s): -s / (2 s) = -1/2;
    # lag +1: (0, 0, -s, s): 2 s / sqrt(4 * 2 s^2) = 1/sqrt(2)
    curve = qo.offset_curve(motion, np.array([1.0, 1.0, 1.0, 1.0, 0.0, 2.0]), 1)
    assert curve == pytest.approx([0.0, -0.5, 1 / np.sqrt(2)], abs=1e-12)
    # a window with a single small entry e correlates e / (2 |e|) = 1/2, however small
    faint = qo.offset_curve(motion, np.array([1.0, 1.0, 1.0, 1.1, 0.0, 1.9]), 1)
    assert faint[0] == pytest.approx(0.5, abs=1e-12)


def test_estimate_offset_without_far_lags_by_hand():
    # max_lag 1 (0.1 s at 10 fps): no lag is more than 3 frames from the peak, so the
    # confidence is the peak itself. v = (-1, 1, -1, 1); onsets (0, 0, 1, 0, 1, 0) centre
    # to (-1, -1, 2, -1, 2, -1) / 3: lag -1 -> -3 / (2 sqrt 7), lag 0 -> 3 / sqrt 10,
    # lag +1 -> -3 / sqrt 10; the parabola moves the peak by 0.5 (l - r) / (l - 2 m + r)
    motion = np.array([[0.0], [1.0], [0.0], [1.0]])
    onsets = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 0.0])[:, None]
    left, mid, right = -3 / (2 * np.sqrt(7)), 3 / np.sqrt(10), -3 / np.sqrt(10)
    shift = 0.5 * (left - right) / (left - 2 * mid + right)
    assert qo.offset_curve(motion, onsets, 1) == pytest.approx([left, mid, right], abs=1e-12)
    # both kept to four places: -0.0056 s and 0.9487
    assert qo.estimate_offset(motion, onsets, 10.0, max_offset_s=0.1) == (round(shift / 10, 4), round(mid, 4))
    assert round(shift / 10, 4) == -0.0056 and round(mid, 4) == 0.9487


def test_confidence_is_zero_when_every_lag_anticorrelates():
    # motion (0, 1, 0, 0): v . w = (3 w1 - w0 - w2 - w3) / 4 over each window; onsets
    # (1, 0, 0, 0, 1, 1) have w1 = 0 below the window's others at every lag: all negative
    motion = np.array([[0.0], [1.0], [0.0], [0.0]])
    onsets = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 1.0])[:, None]
    assert (qo.offset_curve(motion, onsets, 1) < 0).all()
    assert qo.estimate_offset(motion, onsets, 10.0, max_offset_s=0.1)[1] == 0.0


def test_a_lag_three_frames_from_the_peak_is_not_a_rival():
    # two key presses 3 frames apart, the audio an exact copy 2 frames late: at lags -1
    # and +5 one press lines up with the other, but those are within
    # CONFIDENCE_EXCLUSION_FRAMES = 3 of the peak; no lag farther away correlates, so the
    # confidence is the peak's correlation (almost 1), not the peak minus a side peak
    n, max_lag = 40, 5
    motion = np.full((n, 1), 0.5)
    motion[[10, 13]] = 3.0
    onsets = np.full((n + 2 * max_lag, 1), 0.5)
    onsets[[max_lag + 12, max_lag + 15]] = 3.0
    curve = qo.offset_curve(motion, onsets, max_lag)
    assert int(np.argmax(curve)) == max_lag + 2
    assert curve[max_lag - 1] > 0.4 and curve[max_lag + 5] > 0.4  # the side peaks
    assert (curve[:max_lag - 1] < 0).all()  # lags -5..-2: the only ones more than 3 away
    offset, confidence = qo.estimate_offset(motion, onsets, 10.0, max_offset_s=0.5)
    assert offset == pytest.approx(0.2, abs=1e-3)
    assert confidence == pytest.approx(curve[max_lag + 2], abs=1e-4) and confidence > 0.9


def test_motion_of_exactly_min_motion_is_not_a_still_picture():
    # 16 frames, two presses of 0.16 grey levels: mean 0.32 / 16 = 0.02 = MIN_MOTION exactly
    # (doubling and halving are exact in binary); only a mean below it is "still"
    fps, max_lag = 10.0, 5
    motion = np.zeros((16, 1))
    motion[[4, 9]] = 0.16
    assert float(motion.mean()) == qo.MIN_MOTION
    onsets = np.zeros((16 + 2 * max_lag, 1))
    onsets[[max_lag + 6, max_lag + 11]] = 1.0  # the audio 2 frames late
    offset, confidence = qo.estimate_offset(motion, onsets, fps, max_offset_s=0.5)
    assert offset == pytest.approx(0.2, abs=0.01) and confidence > 0.3
    assert qo.estimate_offset(motion * 0.99, onsets, fps, max_offset_s=0.5) == (0.0, 0.0)


def test_av_offset_on_drawn_key_presses_with_a_short_search():
    """Frames drawn by hand: a key's strip (8 strips of 8 px) turns white while it is
    down, from the frame holding its onset to the frame holding its release; the audio's
    notes are 2 frames (0.08 s) late and the clip starts at source second 10. Onsets at
    frame centres, so the notes' events fall on whole frames as the picture's do."""
    fps, n = 25.0, 75
    rng = np.random.default_rng(5)
    events = []  # (start frame, end frame, pitch) in the clip's frames
    for k in range(14):
        start = 2 + 5 * k
        events.append((start, min(start + int(rng.integers(2, 5)), n - 1), int(rng.choice([24, 40, 60, 70, 85, 100]))))
    frames = []
    for i in range(n):
        frame = np.zeros((8, 64), np.uint8)
        for start, end, pitch in events:
            if start <= i < end:
                strip = qo.key_band(pitch, 8)
                frame[:, 8 * strip:8 * strip + 8] = 255
        frames.append(frame)
    late = 2 / fps
    notes = [Note(10.0 + (s + 0.5) / fps + late, 10.0 + (e + 0.5) / fps + late, p, 80) for s, e, p in events]
    offset, confidence = qo.av_offset(frames, notes, fps, t0=10.0, max_offset_s=0.4)
    assert offset == pytest.approx(late, abs=0.1 / fps) and confidence > 0.3


# ---- source_offset: curves whose peaks are known ----

def _quadratic(centre, amplitude=1.0, max_lag=10):
    """A curve 1 - (lag - centre)^2 / 16: the mean of such curves is the same parabola
    centred on the (amplitude-weighted) mean centre, and the parabola refinement finds
    its vertex exactly. Centres in quarters keep every value and sum exact in binary."""
    lags = np.arange(-max_lag, max_lag + 1)
    return amplitude * (1 - (lags - centre) ** 2 / 16)


def test_source_offset_of_two_pairs_of_clips_by_hand():
    # two clips peaking at lag 0, two at lag 2: the pooled parabola peaks at 1 (0.04 s at
    # 25 fps); a bootstrap draw of 4 clips peaks at (number of lag-2 clips) / 2: all four
    # lag 0 or all lag 2 each come up in 1/16 of the draws, more than 2.5 %, so the 95 %
    # interval is [0, 2]: half width one frame, exactly the limit, so still confident.
    # Both clips' own peaks are exactly one frame from the source's: all agree.
    # Far lags (more than 3 from lag 1): -3 and 5, 1 - (9 + 25) / 32 = -1/16 over the
    # peak's 1 - 2/32 = 15/16
    out = qo.source_offset([_quadratic(0), _quadratic(0), _quadratic(2), _quadratic(2)], 25.0, 30)
    assert out == {"offset_s": 0.04, "half_width_s": 0.04, "second_peak": round(-1 / 15, 4),
                   "agree": 1.0, "clips": 4, "notes": 30, "confident": True}


def test_source_offset_bootstrap_agreement_and_rounding_by_hand():
    """Parabolas centred at 1 + d frames, 30 fps: the pooled curve is the parabola
    1 - ((lag - mean)^2 + variance) / 16 (mean and variance of the centres).

    * offset: the mean centre;
    * half width: each bootstrap draw peaks at the mean centre of the clips drawn
      (clips drawn as ``default_rng(seed).integers(0, n, n)``, 200 draws); half the
      2.5-97.5 percentile range;
    * agree: the share of clips whose own peak is within one frame of the source's;
    * second peak: the pooled curve at the best lag more than 3 frames from the
      peak's lag, over the peak's;
    * confident only with a half width of at most one frame (the rest holds here)."""
    fps, boot = 30.0, 200
    cases = [
        # five clips within one frame of the mean 1 (two exactly one frame away), four
        # more than one away though the lag of their highest point is within one (all
        # but d = -1.5, centred at -0.5, whose highest lags -1 and 0 tie: the first,
        # -1, counts, two frames away): 5/9
        ([0, 0, 0, 1, -1, 1.25, -1.25, 1.5, -1.5], 5 / 9, False),
        # -1 and 3 two frames away: 3/5 agree; the mean of five is uncertain by more
        # than one frame (between one and two)
        ([-2, 0, 0, 0, 2], 3 / 5, True),
    ]
    for d, agree, wide in cases:
        centres = 1 + np.array(d, float)
        n = len(centres)
        mean, var = centres.mean(), centres.var()

        def pooled(lag):
            return 1 - ((lag - mean) ** 2 + var) / 16

        curves = [_quadratic(c) for c in centres]
        for seed in (0, 7):
            rng = np.random.default_rng(seed)
            draws = [centres[rng.integers(0, n, n)].mean() for _ in range(boot)]
            lo, hi = np.percentile(draws, [2.5, 97.5])
            half = (hi - lo) / 2 / fps
            peak = int(np.floor(mean + 0.5))  # the lag nearest the vertex
            far = max(pooled(peak - 4), pooled(peak + 4))
            got = qo.source_offset(curves, fps, 40, seed=seed)
            assert got == {"offset_s": round(mean / fps, 4), "half_width_s": pytest.approx(round(half, 4), abs=1e-12),
                           "second_peak": pytest.approx(round(far / pooled(peak), 4), abs=1e-12),
                           "agree": round(agree, 4), "clips": n, "notes": 40, "confident": not wide}
            assert (1 / fps < half <= 2 / fps) if wide else (0.2 / fps < half <= 1 / fps)
        # the default seed is 0: a build's recorded offsets reproduce from run to run
        assert qo.source_offset(curves, fps, 40) == qo.source_offset(curves, fps, 40, seed=0)
    assert round(1 / 30, 4) == 0.0333 and round(5 / 9, 4) == 0.5556  # four places kept


def test_source_offset_bootstrap_of_the_mean_is_narrower_than_the_clips():
    # five clips at lag 0 and five at lag 2: a draw of 10 peaks at 2 k / 10 for k clips at
    # lag 2; k outside 2..8 has probability 22/1024 (about 2 %), so the 95 % interval is
    # about [0.4, 1.6]: half width about 0.6 frame, not the 1 frame between the clips
    out = qo.source_offset([_quadratic(0)] * 5 + [_quadratic(2)] * 5, 25.0, 40)
    assert 0.4 / 25 <= out["half_width_s"] <= 0.8 / 25
    # a first clip unlike the others moves every draw that picks it
    odd = qo.source_offset([_quadratic(3)] + [_quadratic(0)] * 3, 25.0, 40)
    assert odd["half_width_s"] > 0


def test_source_offset_guards_by_hand():
    lags = np.arange(-4, 5)
    # a second peak exactly at the limit 0.8 (0.5 / 0.625, exact in binary) is allowed
    curve = np.where(lags == 0, 0.625, 0.0) + np.where(np.abs(lags) == 1, 0.3125, 0.0) \
        + np.where(lags == 4, 0.5, 0.0)
    out = qo.source_offset([curve] * 4, 25.0, 40)
    assert out["second_peak"] == 0.8 and out["confident"]
    # no lag more than 3 frames from the peak: the second peak is unknown, counted as 1
    short = np.array([0.0, 0.25, 0.5, 1.0, 0.5, 0.25, 0.0])
    out = qo.source_offset([short] * 3, 25.0, 40)
    assert out["second_peak"] == 1.0 and not out["confident"]
    # a peak of 0: no ratio to take, 1 as well
    flat = np.where(lags == 0, 0.0, -1.0)
    out = qo.source_offset([flat] * 3, 25.0, 40)
    assert out["second_peak"] == 1.0 and not out["confident"]
    # exactly SOURCE_MIN_NOTES notes and exactly SOURCE_MIN_AGREE of the clips agreeing
    assert qo.source_offset([curve] * 3, 25.0, qo.SOURCE_MIN_NOTES)["confident"]
    half = [_quadratic(0)] * 4 + [_quadratic(3, 1 / 16)] * 2 + [_quadratic(-3, 1 / 16)] * 2
    out = qo.source_offset(half, 25.0, 40)
    assert out["agree"] == qo.SOURCE_MIN_AGREE == 0.5 and out["confident"]
    # a curve of even length has no middle lag: a clear error (it was numpy's IndexError,
    # or for a curve of zeros a made-up offset)
    for even in (np.zeros(8), np.arange(8.0), _quadratic(0)[1:]):
        with pytest.raises(ValueError, match="odd length"):
            qo.source_offset([even] * 3, 25.0, 40)
