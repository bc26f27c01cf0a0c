"""Audio/video offset on rendered keyboard videos with injected offsets."""

import numpy as np
import pytest

from copdata.notes import Note
from copdata.qa.offset import av_offset, estimate_offset, key_band, motion_signal
from copdata.render.keyboard import KeyboardRenderer
from copdata.render.performance import generate_performance

FPS = 25.0


@pytest.fixture(scope="module")
def performance():
    notes, _ = generate_performance(1, 14.0)
    frames = list(KeyboardRenderer(520, 80).frames(notes, FPS, int(14 * FPS)))
    return notes, frames


def late(notes, seconds):
    """The notes of audio that is ``seconds`` late."""
    return [Note(n.start + seconds, n.end + seconds, n.pitch, n.velocity) for n in notes]


@pytest.mark.parametrize("offset", [-0.5, -0.31, -0.1, 0.0, 0.04, 0.22, 0.5])
def test_injected_offset_is_found_within_one_frame(performance, offset):
    notes, frames = performance
    clip = frames[50:300]  # source seconds 2..12
    measured, confidence = av_offset(clip, late(notes, offset), FPS, t0=2.0)
    assert abs(measured - offset) <= 1.0 / FPS, (measured, offset)
    assert confidence > 0.05


def test_in_sync_clip_is_within_one_frame_of_zero():
    notes, _ = generate_performance(4, 12.0)
    frames = KeyboardRenderer(520, 80).frames(notes, FPS, 250)
    measured, _ = av_offset(frames, notes, FPS)
    assert abs(measured) <= 1.0 / FPS


def test_still_picture_has_no_confident_offset(performance):
    notes, frames = performance
    still = [frames[0]] * 250
    assert av_offset(still, notes, FPS) == (0.0, 0.0)


def test_key_bands_run_left_to_right():
    assert key_band(21, 8) == 0 and key_band(108, 8) == 7
    bands = [key_band(p, 8) for p in range(21, 109)]
    assert bands == sorted(bands)


def test_estimate_offset_checks_shapes():
    motion = motion_signal([np.zeros((8, 8, 3), np.uint8)] * 10)
    with pytest.raises(ValueError, match="rows"):
        estimate_offset(motion, np.zeros((10, 1)), FPS)


def _curve(peak_frame: float, max_lag: int = 25, width: float = 1.5, rng=None):
    lags = np.arange(-max_lag, max_lag + 1)
    curve = 0.6 * np.exp(-0.5 * ((lags - peak_frame) / width) ** 2)
    return curve + (0.02 * rng.standard_normal(len(lags)) if rng is not None else 0.0)


def test_source_offset_is_confident_only_when_its_clips_agree():
    """Oracle: curves peaking at a known lag. Agreeing clips give that lag,
    confidently; clips peaking at different lags, too few clips or too few
    notes are never confident, whatever their mean says."""
    from copdata.qa.offset import source_offset

    rng = np.random.default_rng(0)
    agree = source_offset([_curve(7.3, rng=rng) for _ in range(5)], 25.0, notes=200)
    assert agree["confident"] and abs(agree["offset_s"] - 7.3 / 25.0) < 0.5 / 25.0
    assert agree["half_width_s"] <= 1 / 25.0 and agree["agree"] == 1.0
    scattered = source_offset([_curve(p, rng=rng) for p in (-12, 3, 7, 15, -4)], 25.0, notes=200)
    assert not scattered["confident"]
    assert not source_offset([_curve(7.3, rng=rng) for _ in range(2)], 25.0, notes=200)["confident"]
    assert not source_offset([_curve(7.3, rng=rng) for _ in range(5)], 25.0, notes=10)["confident"]
    # two peaks of about the same height (a steady beat): no clearly lower second peak
    double = [_curve(-5, rng=rng) + _curve(8) for _ in range(5)]
    assert not source_offset(double, 25.0, notes=200)["confident"]


@pytest.mark.parametrize("colour", [False, True])
def test_motion_signal_matches_a_frame_by_frame_loop(colour):
    """Oracle: the definition worked frame by frame (grey, 4x4 block means,
    mean absolute change per strip); a frame of another size restarts it."""
    from copdata.qa.offset import MOTION_DOWNSCALE

    rng = np.random.default_rng(5)
    shape = (18, 35, 3) if colour else (18, 35)
    frames = [rng.integers(0, 256, shape).astype(np.uint8) for _ in range(6)]

    def grey(frame):
        g = frame.astype(np.float64) @ [0.299, 0.587, 0.114] if colour else frame.astype(np.float64)
        f = MOTION_DOWNSCALE
        h, w = g.shape[0] // f, g.shape[1] // f
        return np.array([[g[i * f:(i + 1) * f, j * f:(j + 1) * f].mean() for j in range(w)]
                         for i in range(h)])

    expected = np.zeros((6, 3))
    for t in range(1, 6):
        change = np.abs(grey(frames[t]) - grey(frames[t - 1])).mean(axis=0)  # 8 columns
        expected[t] = [change[0:2].mean(), change[2:5].mean(), change[5:8].mean()]
    np.testing.assert_allclose(motion_signal(frames, 3), expected, rtol=1e-5)
    other = rng.integers(0, 256, (shape[0] + 4,) + shape[1:]).astype(np.uint8)
    mixed = motion_signal(frames[:3] + [other] + frames[3:5], 3)
    np.testing.assert_allclose(mixed[:3], expected[:3], rtol=1e-5)
    assert mixed[3].tolist() == [0.0, 0.0, 0.0]  # a new size: no change measured
    np.testing.assert_allclose(mixed[5], expected[4], rtol=1e-5)
