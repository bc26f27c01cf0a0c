"""AV-Align, reference-equivalent implementation (slow; used to check the fast one).

Follows the published AV-Align code of Yariv et al. (TempoTokens ``av_align.py``)
in its 2025 corrected form step by step, so the same files give the same value:

1. every frame of the video is decoded with ``cv2.VideoCapture`` (BGR) and kept
   in a list; the fps is ``CAP_PROP_FPS``;
2. for each pair, both frames are converted to grayscale and
   ``cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 3, 15, 3, 5, 1.2, 0)``
   is run; the pair's value is ``cv2.mean(cv2.magnitude(fx, fy))``; the
   trajectory is ``[m(0, 1)] + [m(i - 1, i) for i in 1..T-1]`` (the first pair
   counted twice, so its length equals the number of frames);
3. video peaks: indices i in 1..T-2 with ``a[i-1] < a[i] > a[i+1]`` and
   ``a[i] >= 0.1``, at time ``i / fps``;
4. audio peaks: ``librosa.load(path)`` (22050 Hz mono), ``onset_strength``,
   ``onset_detect``, ``frames_to_time``;
5. IoU: each audio peak, in order, takes the first unused video peak with
   ``v - 1/fps < a < v + 1/fps``; ``IoU = I / (A + V - I + 1e-9)``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import librosa
import numpy as np

FARNEBACK_PARAMS = (0.5, 3, 15, 3, 5, 1.2, 0)
PEAK_THRESHOLD = 0.1
AUDIO_SAMPLE_RATE = 22050


def _read_all_frames(video_path: str | Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(video_path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    if not cap.isOpened():
        raise ValueError(f"cannot open video {video_path}")
    frames = []
    ok, frame = cap.read()
    while ok:
        frames.append(frame)
        ok, frame = cap.read()
    cap.release()
    return frames, fps


def _pair_flow_magnitude(frame_a: np.ndarray, frame_b: np.ndarray) -> float:
    gray_a = cv2.cvtColor(frame_a, cv2.COLOR_BGR2GRAY)
    gray_b = cv2.cvtColor(frame_b, cv2.COLOR_BGR2GRAY)
    flow = cv2.calcOpticalFlowFarneback(gray_a, gray_b, None, *FARNEBACK_PARAMS)
    return cv2.mean(cv2.magnitude(flow[..., 0], flow[..., 1]))[0]


def reference_trajectory(video_path: str | Path) -> tuple[list[float], float]:
    frames, fps = _read_all_frames(video_path)
    if len(frames) < 2:
        return [], fps
    first = _pair_flow_magnitude(frames[0], frames[1])
    rest = [_pair_flow_magnitude(frames[i - 1], frames[i]) for i in range(1, len(frames))]
    return [first] + rest, fps


def reference_video_peaks(trajectory: list[float], fps: float) -> list[float]:
    peaks = []
    for i in range(1, len(trajectory) - 1):
        a, b, c = trajectory[i - 1], trajectory[i], trajectory[i + 1]
        if a < b and b > c and b >= PEAK_THRESHOLD:
            peaks.append(i / fps)
    return peaks


def reference_audio_peaks(audio_path: str | Path) -> np.ndarray:
    y, sr = librosa.load(str(audio_path))
    envelope = librosa.onset.onset_strength(y=y, sr=sr)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sr)
    return librosa.frames_to_time(onsets, sr=sr)


def reference_iou(audio_peaks, video_peaks, fps: float) -> float:
    used = [False] * len(video_peaks)
    hits = 0
    for a in audio_peaks:
        for j, v in enumerate(video_peaks):
            if not used[j] and v - 1 / fps < a < v + 1 / fps:
                used[j] = True
                hits += 1
                break
    return hits / (len(audio_peaks) + len(video_peaks) - hits + 1e-9)


def reference_av_align(video_path: str | Path, audio_path: str | Path) -> float:
    """AV-Align of a video file and an audio file, exactly as the reference does it."""
    trajectory, fps = reference_trajectory(video_path)
    video_peaks = reference_video_peaks(trajectory, fps)
    audio_peaks = reference_audio_peaks(audio_path)
    return reference_iou(audio_peaks, video_peaks, fps)
