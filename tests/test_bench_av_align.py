"""AV-Align: a PyAV-encoded video that jumps at known frames vs audio clicks."""

import cv2
import numpy as np
import pytest

from copbench.metrics import av_align as fast, av_align_reference as ref
from copdata.media import encode

FPS = 25
JUMP_FRAMES = (10, 22, 35, 47)


def _texture(h, w, seed=0):
    small = (np.random.default_rng(seed).random((h // 8, w // 8 + 8, 3)) * 255).astype(np.uint8)
    return cv2.resize(small, (w + 64, h), interpolation=cv2.INTER_CUBIC)


def _write_video(path, num_frames=60, size=(160, 64)):
    w, h = size
    tex = _texture(h, w)
    offset = 0
    frames = []
    for i in range(num_frames):
        if i in JUMP_FRAMES:
            offset += 6  # the scene jumps between frame i-1 and frame i
        frames.append(np.ascontiguousarray(tex[:, offset:offset + w]))
    encode.encode_video(path, frames, FPS)


def _clicks(times, seconds, sr=44100):
    audio = np.zeros(int(seconds * sr), np.float32)
    for t in times:
        i = int(round(t * sr))
        audio[i:i + 64] = np.hanning(64).astype(np.float32)
    return audio


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("av") / "video.mp4"
    _write_video(path)
    return path


def test_iou_helper_known_answers():
    assert fast.peak_iou([0.40, 0.88], [0.40, 0.88, 1.40], 25) == pytest.approx(2 / 3, abs=1e-8)
    # two audio peaks near one video peak: one-to-one, so only one matches
    assert fast.peak_iou([0.40, 0.41], [0.40], 25) == pytest.approx(1 / 2, abs=1e-8)
    # the window is strict: exactly one frame away does not match
    assert fast.peak_iou([0.44], [0.40], 25) == pytest.approx(0.0, abs=1e-8)
    assert fast.peak_iou([], [], 25) == 0.0
    traj = np.array([0.0, 0.5, 0.1, 0.05, 0.09, 0.0, 0.3, 0.3, 0.0])
    # strict maxima >= 0.1: index 1 only (index 4 is below 0.1; 6/7 is a plateau)
    assert list(fast.video_peaks(traj, 25)) == [1 / 25]


def test_video_peaks_at_jumps(video):
    trajectory, fps = fast.flow_trajectory(video, workers=2)
    assert fps == FPS and trajectory.shape == (60,)
    assert trajectory[0] == trajectory[1]  # the reference counts the first pair twice
    peaks = np.round(fast.video_peaks(trajectory, fps) * fps).astype(int)
    assert set(JUMP_FRAMES) <= set(peaks.tolist())


def test_aligned_clicks_score_high_and_shifted_low(video, tmp_path):
    sr = 44100
    aligned = _clicks([f / FPS for f in JUMP_FRAMES], 60 / FPS, sr)
    shifted = _clicks([f / FPS + 0.2 for f in JUMP_FRAMES], 60 / FPS, sr)
    good = fast.av_align(video, aligned, sr)
    bad = fast.av_align(video, shifted, sr)
    assert good >= 0.75
    assert bad <= 0.25
    # The reference implementation gives the same values from files.
    encode.write_audio(tmp_path / "a.wav", aligned, sr)
    encode.write_audio(tmp_path / "b.wav", shifted, sr)
    from copdata.media.decode import read_audio
    a_file, _ = read_audio(tmp_path / "a.wav")
    b_file, _ = read_audio(tmp_path / "b.wav")
    assert ref.reference_av_align(video, tmp_path / "a.wav") == fast.av_align(video, a_file, sr)
    assert ref.reference_av_align(video, tmp_path / "b.wav") == fast.av_align(video, b_file, sr)


def test_fast_trajectory_matches_reference_and_is_reproducible(video):
    expected, fps = ref.reference_trajectory(video)
    runs = [fast.flow_trajectory(video, workers=w) for w in (1, 2, 3)]
    for got, fps2 in runs:
        assert fps == fps2
        assert np.array_equal(got, runs[0][0])  # same bits whatever the worker count
    # The reference itself varies run to run in the last bits (OpenCV SIMD/threads).
    np.testing.assert_allclose(runs[0][0], np.asarray(expected), rtol=1e-6, atol=1e-9)  # float32 flow
    assert list(fast.video_peaks(runs[0][0], fps)) == ref.reference_video_peaks(expected, fps)


def test_trajectory_cache_roundtrip(video, tmp_path, monkeypatch):
    monkeypatch.setenv("COPBENCH_CACHE", str(tmp_path / "cache"))
    a, fps = fast.cached_trajectory(video)
    assert any((tmp_path / "cache" / "av_align").iterdir())
    b, fps_b = fast.cached_trajectory(video)
    assert np.array_equal(a, b) and fps == fps_b
