"""Media encoding through PyAV: H.264 mp4 video and 16-bit FLAC/WAV audio.

- :func:`encode_video` / :class:`VideoEncoder` write H.264 mp4 (yuv420p, even
  sizes), optionally on a helper thread.
- :func:`write_audio` writes FLAC or WAV through :func:`pcm16`;
  :func:`as_written` is what a reader gets back; :func:`full_scale_gain` fits
  a peak inside full scale.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np


def _fps_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


class VideoEncoder:
    """Incremental H.264 mp4 writer (yuv420p); frames must share one even size.

    With ``background=True`` (default) frames are encoded on a helper thread
    (PyAV releases the GIL while x264 works), so encoding overlaps with the
    decoding and rendering that produce the next frames. Errors from that
    thread are raised by the next :meth:`write` or by :meth:`close`.
    """

    def __init__(self, path: str | Path, fps: float, crf: int = 20, preset: str = "superfast",
                 threads: int = 1, background: bool = True):
        self.path = str(path)
        self.fps = _fps_fraction(fps)
        # One x264 thread: builds parallelise over items (worker processes).
        self.crf, self.preset, self.threads = crf, preset, threads
        self.container = av.open(self.path, mode="w")
        self.stream = None
        self.count = 0
        self._queue: queue.Queue | None = queue.Queue(maxsize=8) if background else None
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None

    def _open_stream(self, w: int, h: int) -> None:
        if w % 2 or h % 2:
            raise ValueError(f"H.264 needs even frame sizes, got {w}x{h}")
        self.stream = self.container.add_stream(
            "libx264", rate=self.fps, options={"crf": str(self.crf), "preset": self.preset,
                                               "threads": str(self.threads)})
        self.stream.width, self.stream.height = w, h
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = 1 / self.fps

    def _encode(self, image: np.ndarray | av.VideoFrame | None, pts: int) -> None:
        if image is None:
            packets = self.stream.encode(None)
        else:
            frame = (image if isinstance(image, av.VideoFrame)
                     else av.VideoFrame.from_ndarray(image, format="rgb24"))
            frame.pts = pts
            frame.time_base = 1 / self.fps
            packets = self.stream.encode(frame)
        for packet in packets:
            self.container.mux(packet)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._error is None:
                try:
                    self._encode(*job)
                except BaseException as exc:  # handed to the writing thread
                    self._error = exc

    def write(self, rgb: np.ndarray | av.VideoFrame) -> None:
        """Append one frame: an RGB uint8 ``(H, W, 3)`` array or an ``av.VideoFrame``."""
        if self._error is not None:
            raise self._error
        is_frame = isinstance(rgb, av.VideoFrame)
        h, w = (rgb.height, rgb.width) if is_frame else rgb.shape[:2]
        if self.stream is None:
            self._open_stream(w, h)
            if self._queue is not None:
                self._worker = threading.Thread(target=self._run, daemon=True,
                                                name="copdata-x264")
                self._worker.start()
        if not is_frame:  # a copy: the producer may reuse its buffer
            rgb = np.array(rgb, dtype=np.uint8, order="C")
        if self._worker is not None:
            self._queue.put((rgb, self.count))
        else:
            self._encode(rgb, self.count)
        self.count += 1

    def close(self) -> None:
        try:
            if self._worker is not None:
                self._queue.put(None)
                self._worker.join()
                self._worker = None
            if self._error is not None:
                raise self._error
            if self.stream is not None:
                self._encode(None, 0)
        finally:
            self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def encode_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, **kw) -> int:
    """Write frames to an H.264 mp4; returns the number written."""
    with VideoEncoder(path, fps, **kw) as enc:
        for rgb in frames:
            enc.write(rgb)
        return enc.count


PCM16_WRITE_SCALE = 32767.0  # write_audio: float 1.0 -> 32767
PCM16_READ_SCALE = 32768.0  # FFmpeg's s16 -> float conversion: 32767 -> 32767/32768


def pcm16(audio: np.ndarray) -> np.ndarray:
    """The int16 samples :func:`write_audio` stores for float ``audio``; samples
    beyond [-1, 1] are clipped here, so callers bring the level inside first
    (:func:`full_scale_gain`)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    return (np.clip(audio, -1.0, 1.0) * PCM16_WRITE_SCALE).round().astype(np.int16)


def as_written(audio: np.ndarray) -> np.ndarray:
    """The float32 samples a file written by :func:`write_audio` decodes to
    (what ``copdata validate`` and readers see)."""
    return pcm16(audio).astype(np.float32) / PCM16_READ_SCALE


def full_scale_gain(peak: float) -> float:
    """The gain that brings a signal of this absolute ``peak`` inside [-1, 1]
    without clipping: ``1 / peak`` above full scale, else 1 (quieter audio is
    left as it is). Decoded compressed audio (AAC, MP3) can peak above 1.0."""
    return 1.0 / float(peak) if peak > 1.0 else 1.0


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono audio as 16-bit FLAC (``.flac``) or WAV (``.wav``) (:func:`pcm16`)."""
    path = str(path)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio holds NaN or inf samples")
    suffix = Path(path).suffix.lower()
    codec = {".flac": "flac", ".wav": "pcm_s16le"}.get(suffix)
    if codec is None:
        raise ValueError(f"unsupported audio suffix {suffix!r}: use .flac or .wav")
    pcm = pcm16(audio)
    with av.open(path, mode="w", format="flac" if codec == "flac" else "wav") as container:
        stream = container.add_stream(codec, rate=int(sample_rate), layout="mono")
        stream.format = "s16"
        block = 4096
        for i in range(0, len(pcm), block):
            frame = av.AudioFrame.from_ndarray(pcm[None, i:i + block], format="s16", layout="mono")
            frame.sample_rate = int(sample_rate)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
