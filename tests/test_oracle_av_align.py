"""AV-Align's pieces against cases worked by hand (issue 21: mutation testing).

``tests/test_bench_av_align.py`` checks the trajectory against the reference
implementation on encoded video; here the metric object, the peak rules at
their edges, the trajectory cache and the worker plumbing are driven with
stand-ins whose answers are known.
"""

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import copbench.metrics.av_align as av
from copbench.metrics.base import ScoreItem


def test_video_peaks_are_strict_local_maxima_at_or_above_the_threshold():
    # fps 10: index i is at i / 10 s
    assert av.video_peaks([0.0, 0.5, 0.0], 10.0).tolist() == [0.1]  # three values are enough
    assert av.video_peaks([0.0, 0.1, 0.0, 0.09, 0.0], 10.0).tolist() == [0.1]  # 0.1 counts, 0.09 not
    assert av.video_peaks([0.0, 0.5, 0.5, 0.0], 10.0).tolist() == []  # a plateau is no strict maximum
    two = av.video_peaks([0.0, 1.0], 10.0)
    assert two.shape == (0,) and av.video_peaks([], 25.0).shape == (0,)


def test_peak_iou_matches_within_one_frame_exclusive():
    # fps 10: the window around a video peak at 0.5 s is (0.4, 0.6), open
    assert 0.5 - 0.1 == 0.4
    assert av.peak_iou([0.4], [0.5], 10.0) == 0.0
    assert av.peak_iou([0.45], [0.5], 10.0) == pytest.approx(1.0)
    # each video peak is used once: two audio peaks near one video peak, I = 1, IoU 1 / 2
    assert av.peak_iou([0.48, 0.52], [0.5], 10.0) == pytest.approx(1 / 2)


def test_aligned_buffers_start_on_64_bytes():
    for shape in [(3, 5), (7, 11), (1,), (2, 2, 2)] * 5:
        buf = av._aligned(shape)
        assert buf.ctypes.data % 64 == 0 and buf.shape == shape and buf.dtype == np.float32
    assert av._aligned((4,), np.float64).dtype == np.float64


def test_default_workers_is_the_cpu_count_or_one(monkeypatch):
    for count, want in ((None, 1), (1, 1), (6, 6)):
        monkeypatch.setattr(av.os, "cpu_count", lambda count=count: count)
        assert av.default_workers() == want


def test_av_align_passes_its_workers_and_cache_choice(monkeypatch):
    seen = []
    monkeypatch.setattr(av, "cached_trajectory",
                        lambda path, workers, use_cache: seen.append((path, workers, use_cache))
                        or (np.array([0.0, 0.0, 1.0, 0.0, 0.0]), 10.0))
    monkeypatch.setattr(av, "audio_peaks", lambda audio, rate: np.array([0.21]))
    assert av.av_align("v.mp4", np.zeros(10), 16000, workers=3) == pytest.approx(1.0)
    assert av.av_align("v.mp4", np.zeros(10), 16000, workers=2, use_cache=True) == pytest.approx(1.0)
    assert seen == [("v.mp4", 3, False), ("v.mp4", 2, True)]


def test_trajectory_cache_is_read_back_and_keyed_by_the_video(monkeypatch, tmp_path):
    monkeypatch.setenv("COPBENCH_CACHE", str(tmp_path / "cache"))
    calls = []

    def flow(path, workers=None):
        calls.append((Path(path).name, workers))
        return np.array([0.0, float(len(calls)), 0.5]), 25.0
    monkeypatch.setattr(av, "flow_trajectory", flow)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(b"video a")
    b.write_bytes(b"video b")
    first = av.cached_trajectory(a, workers=2)
    again = av.cached_trajectory(a, workers=2)
    assert calls == [("a.mp4", 2)]  # the second call came from the cache
    assert np.array_equal(first[0], again[0]) and again[1] == 25.0
    other = av.cached_trajectory(b, workers=4)
    assert calls[-1] == ("b.mp4", 4) and other[0][1] == 2.0
    fresh = av.cached_trajectory(a, workers=3, use_cache=False)
    assert calls[-1] == ("a.mp4", 3) and fresh[0][1] == 3.0


def test_flow_runs_each_pair_on_one_opencv_thread_and_restores_the_setting(make_video, monkeypatch):
    video = make_video("v.mp4", seconds=0.4, fps=25, with_audio=False)
    seen = []
    real = av._pair_magnitude
    monkeypatch.setattr(av, "_pair_magnitude",
                        lambda a, b: seen.append(cv2.getNumThreads()) or real(a, b))
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)  # a setting other than 1 (what an unset or None one reads as)
    try:
        trajectory, fps = av.flow_trajectory(video, workers=2)
        after = cv2.getNumThreads()
    finally:
        cv2.setNumThreads(before)
    assert fps == 25.0 and len(trajectory) == 10 and len(seen) == 9  # 10 frames, 9 pairs
    assert set(seen) == {1} and after == 3
    from copbench.errors import MetricError
    with pytest.raises(MetricError) as caught:
        av.flow_trajectory(video.parent / "missing.mp4")
    assert caught.value.item == str(video.parent / "missing.mp4")


def test_the_metric_object_scores_the_clips_video_and_counts_no_peaks(monkeypatch):
    seen = []
    trajectories = {"moving": np.array([0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0]), "still": np.zeros(7)}

    def trajectory(path, workers, use_cache):
        seen.append((Path(path).parent.name, Path(path).name, workers, use_cache))
        return trajectories[Path(path).parent.name], 10.0
    peaks = {0.25: np.array([0.21, 0.33]), 0.0: np.zeros(0)}
    monkeypatch.setattr(av, "cached_trajectory", trajectory)
    monkeypatch.setattr(av, "audio_peaks", lambda audio, rate: seen.append(rate) or peaks[float(audio[0])])
    metric = av.AvAlign(workers=2)
    clip = lambda name: SimpleNamespace(id=name, dir=Path("/data") / name, sample_rate=16000)  # noqa: E731
    loud, quiet = np.full(8, 0.25, np.float32), np.zeros(8, np.float32)
    # video peaks at 0.2 s and 0.5 s; audio at 0.21 s (hit) and 0.33 s (miss): 1 / (2 + 2 - 1)
    assert metric.score(ScoreItem(clip("moving"), loud)) == {"av_align": pytest.approx(1 / 3)}
    assert seen[:2] == [("moving", "video.mp4", 2, True), 16000]
    assert metric.score(ScoreItem(clip("still"), loud)) == {"av_align": 0.0}  # audio peaks only
    assert metric.score(ScoreItem(clip("moving"), quiet)) == {"av_align": 0.0}  # video peaks only
    assert metric.convention_counts() == {"no_peaks": 0}
    assert metric.score(ScoreItem(clip("still"), quiet)) == {"av_align": 0.0}
    assert metric.convention_counts() == {"no_peaks": 1}
    assert av.AvAlign().use_cache is True and av.AvAlign().workers is None


def test_the_metric_records_the_definitions_settings():
    from copbench.metrics.av_align_reference import FARNEBACK_PARAMS
    settings = av.AvAlign().settings()
    # Yariv et al.'s definition: Farneback (0.5, 3, 15, 3, 5, 1.2, 0), peaks >= 0.1,
    # librosa onsets at 22050 Hz, +-1 frame
    assert settings["farneback"] == list(FARNEBACK_PARAMS) == [0.5, 3, 15, 3, 5, 1.2, 0]
    assert (settings["peak_threshold"], settings["audio_sample_rate"], settings["tolerance_frames"]) == \
        (0.1, 22050, 1)
    assert settings["resampler"] == "librosa soxr_hq" and settings["opencv"] == cv2.__version__
    assert "video" in settings


def test_a_video_without_frames_has_an_empty_trajectory(tmp_path):
    # an MJPEG AVI with a header and no frame: OpenCV opens it, the first read fails
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    writer.release()
    trajectory, fps = av.flow_trajectory(path, workers=1)
    assert trajectory.shape == (0,) and fps == 25.0


def test_audio_peaks_read_pcm_integers_as_their_values():
    # clicks every 0.25 s at 22050 Hz (no resampling); 16-bit PCM is read as the same
    # numbers in float32, so the onsets are those of the float signal
    sr = av.AUDIO_SAMPLE_RATE
    audio = np.zeros(sr, np.float32)
    for k in range(1, 4):
        audio[k * sr // 4:k * sr // 4 + 200] = 8000 * np.hanning(200)
    want = av.audio_peaks(audio, sr)
    assert len(want) == 3
    assert np.array_equal(av.audio_peaks(audio.astype(np.int16), sr), want)


def test_the_first_pair_stands_for_frame_zero(tmp_path):
    # three frames: a square appears between frames 0 and 1, then nothing moves; the
    # trajectory is [m(0,1), m(0,1), m(1,2)] with m(1,2) = 0 (identical frames)
    path = tmp_path / "three.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    still = np.zeros((64, 64, 3), np.uint8)
    moved = still.copy()
    moved[20:40, 20:40] = 255
    for frame in (still, moved, moved):
        writer.write(frame)
    writer.release()
    trajectory, fps = av.flow_trajectory(path, workers=1)
    assert fps == 10.0 and trajectory.dtype == np.float64
    assert trajectory[0] == trajectory[1] > 0 and trajectory[2] == 0.0 and len(trajectory) == 3
