"""Media decoding through PyAV (FFmpeg inside the wheel; no system ffmpeg).

- :func:`probe` opens a file and reports its streams, or raises a typed error.
- :func:`read_audio` decodes mono float32 at a target rate (libswresample).
- :func:`iter_frames` decodes video to a constant frame rate by sample-and-hold
  (frame i shows the source frame on screen at ``start + i/fps``), so variable
  frame rate input gives a regular grid; optional crop box and resize.
- :func:`read_frames` / :func:`decoded_frames` / :func:`count_frames`: a clip's
  frames as stored; :func:`db_full_scale`: an RMS level.

Writing is :mod:`copdata.media.encode`; audio as a block stream is
:mod:`copdata.media.blocks`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import MediaError, MissingStreamError
from .blocks import iter_audio_blocks
from .container import AV_ERRORS, codec_of, open_container

log = logging.getLogger(__name__)
RESAMPLER_NAME = "libswresample (PyAV AudioResampler)"
MIN_VIDEO_SIDE = 8  # pixels: smaller frames cannot show a keyboard (and 1x1 cannot be H.264)


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float  # seconds (container duration, or the longest stream)
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    video_duration: float = 0.0
    audio_duration: float = 0.0
    sample_rate: int = 0


def _stream_duration(stream, container) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1e6
    return 0.0


def probe(path: str | Path) -> MediaInfo:
    """Streams and durations of a media file; raises :class:`MediaError`."""
    try:
        return _probe(path)
    except AV_ERRORS as exc:  # e.g. a stream whose codec parameters are unreadable
        raise MediaError(f"cannot read the streams ({type(exc).__name__}: {exc}); the file is "
                         "corrupt or not a media file", item=str(path)) from exc


def _probe(path: str | Path) -> MediaInfo:
    with open_container(path) as container:
        v = container.streams.video[0] if container.streams.video else None
        a = container.streams.audio[0] if container.streams.audio else None
        if v is None and a is None:
            raise MediaError("no audio or video stream", item=str(path))
        total = container.duration / 1e6 if container.duration else 0.0
        rate = float(v.average_rate or v.guessed_rate or 0) if v is not None else 0.0
        return MediaInfo(
            path=str(path), duration=total, has_video=v is not None, has_audio=a is not None,
            width=codec_of(v, path).width if v is not None else 0,
            height=codec_of(v, path).height if v is not None else 0, fps=rate,
            video_duration=_stream_duration(v, container) if v is not None else 0.0,
            audio_duration=_stream_duration(a, container) if a is not None else 0.0,
            sample_rate=codec_of(a, path).sample_rate if a is not None else 0,
        )


def read_audio(path: str | Path, sample_rate: int | None = None, start: float = 0.0,
               end: float | None = None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream as mono float32.

    ``sample_rate=None`` keeps the file's rate; otherwise audio is resampled with
    libswresample. ``start``/``end`` (seconds from the container start) trim the
    result; sample 0 of the result is time ``start`` (a stream that starts late
    is preceded by zeros). The samples are the concatenated blocks of
    :func:`copdata.media.blocks.iter_audio_blocks`, the one decoding loop.
    Raises :class:`MissingStreamError` when there is no audio stream and
    :class:`MediaError` when decoding fails.
    """
    rate = sample_rate
    if not rate:
        with open_container(path) as container:
            if not container.streams.audio:
                raise MissingStreamError("no audio stream; the CoP clip needs the performance's "
                                         "sound", item=str(path))
            rate = codec_of(container.streams.audio[0], path).sample_rate
    blocks = list(iter_audio_blocks(path, int(rate), start, end))
    audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return np.ascontiguousarray(audio, dtype=np.float32), int(rate)


def _iter_warped(path, fps, start, end, warp, size, rgb):
    import cv2

    matrix, (warp_w, warp_h) = warp
    out_w, out_h = even_size(*(size if size is not None else (warp_w, warp_h)))
    last_src = last_out = None
    for frame in iter_frames(path, fps, start=start, end=end):
        if frame is not last_src:  # a held frame is the same array: warp it once
            strip = cv2.warpAffine(frame, matrix, (warp_w, warp_h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            if (out_w, out_h) != (warp_w, warp_h):
                strip = (cv2.resize(strip, (out_w, out_h), interpolation=cv2.INTER_AREA)
                         if size is not None else np.ascontiguousarray(strip[:out_h, :out_w]))
            last_src = frame
            last_out = strip if rgb else \
                av.VideoFrame.from_ndarray(strip, format="rgb24").reformat(format="yuv420p")
        yield last_out


def even_size(width: int, height: int) -> tuple[int, int]:
    """Round a frame size down to even numbers (H.264 yuv420p needs them)."""
    return max(2, width - width % 2), max(2, height - height % 2)


def iter_frames(path: str | Path, fps: float, start: float = 0.0, end: float | None = None,
                crop: tuple[int, int, int, int] | None = None,
                size: tuple[int, int] | None = None,
                rgb: bool = True, warp: tuple[np.ndarray, tuple[int, int]] | None = None
                ) -> Iterator[np.ndarray] | Iterator[av.VideoFrame]:
    """Yield RGB uint8 frames on the constant grid ``start + i/fps``.

    Frame i is the source frame on screen at that time (sample-and-hold), which
    turns variable-frame-rate input into a regular grid. Frames stop at ``end``
    or at the end of the video stream. ``crop = (x0, y0, x1, y1)`` in source
    pixels is applied first, then ``size = (width, height)``; the result is
    rounded down to even sizes. ``rgb=False`` yields ``av.VideoFrame`` in
    yuv420p instead of arrays (what :class:`VideoEncoder` takes without any
    colour conversion); a held frame is then the same object yielded again.
    ``warp = (matrix, (width, height))`` replaces ``crop``: every frame is
    mapped by the 2x3 affine ``matrix`` (source pixels to output pixels) onto
    an output of that size (a tilted or far-side keyboard turned upright, see
    :func:`copdata.qa.orient.strip_matrix`), then resized to ``size``.
    """
    if warp is not None:
        yield from _iter_warped(path, fps, start, end, warp, size, rgb)
        return
    container = open_container(path)
    try:
        if not container.streams.video:
            raise MissingStreamError("no video stream", item=str(path))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = container.start_time / 1e6 if container.start_time else 0.0
        if start > 1.0:
            container.seek(int(max(start - 1.0, 0) * 1e6))
        step = 1.0 / fps
        i = 0
        prev = None  # (time, av frame)
        prev_rgb = None
        eps = 1e-6

        ctx = codec_of(stream, path)
        src_w, src_h = ctx.width, ctx.height
        if crop is not None:
            x0, y0, x1, y1 = crop
            if not (0 <= x0 < x1 <= src_w and 0 <= y0 < y1 <= src_h):
                raise MediaError(f"crop box {crop} is outside the {src_w}x{src_h} video",
                                 item=str(path))
            cw, ch = x1 - x0, y1 - y0
        else:
            x0 = y0 = 0
            cw, ch = src_w, src_h
        if min(cw, ch) < MIN_VIDEO_SIDE:
            raise MediaError(f"the video{' crop' if crop is not None else ''} is {cw}x{ch} pixels; "
                             f"a keyboard needs at least {MIN_VIDEO_SIDE}x{MIN_VIDEO_SIDE}",
                             item=str(path))
        out_w, out_h = even_size(*(size if size is not None else (cw, ch)))
        graph = None
        if size is not None or crop is not None or not rgb:
            # Crop and scale inside FFmpeg (on YUV, one swscale pass to the output).
            graph = av.filter.Graph()
            chain = [graph.add_buffer(template=stream)]
            if crop is not None:
                chain.append(graph.add("crop", f"{cw}:{ch}:{x0}:{y0}:exact=1"))
            if (out_w, out_h) != (cw, ch):
                if size is None:  # odd size: drop the last row/column
                    chain.append(graph.add("crop", f"{out_w}:{out_h}:0:0:exact=1"))
                else:
                    chain.append(graph.add("scale", f"{out_w}:{out_h}:flags=area"))
            chain.append(graph.add("format", "rgb24" if rgb else "yuv420p"))
            chain.append(graph.add("buffersink"))
            try:
                for a, b in zip(chain, chain[1:]):
                    a.link_to(b)
                graph.configure()
            except AV_ERRORS as exc:
                raise MediaError(f"cannot set up the {cw}x{ch} -> {out_w}x{out_h} frame filter "
                                 f"({type(exc).__name__}: {exc})", item=str(path)) from exc

        def convert(frame) -> np.ndarray:
            if graph is None:
                array = frame.to_ndarray(format="rgb24")
                return np.ascontiguousarray(array[:out_h, :out_w])
            graph.push(frame)
            out = graph.pull()
            return out.to_ndarray() if rgb else out

        frame_dur = float(1 / stream.average_rate) if stream.average_rate else step
        try:
            for frame in container.decode(stream):
                t = (frame.time if frame.time is not None else 0.0) - origin
                while True:
                    target = start + i * step
                    if end is not None and target >= end - eps:
                        return
                    if t <= target + eps:
                        break  # this frame may still be on screen at target
                    if prev is None:  # first frame starts after target: show it
                        prev, prev_rgb = (t, frame), None
                    if prev_rgb is None:
                        prev_rgb = convert(prev[1])
                    yield prev_rgb
                    i += 1
                if prev is None or frame is not prev[1]:
                    prev, prev_rgb = (t, frame), None
                frame_dur = max(frame_dur, 0.0)
        except AV_ERRORS as exc:
            raise MediaError(f"video decoding failed near frame {i} ({type(exc).__name__}: "
                             f"{exc}); the file is truncated or corrupt", item=str(path)) from exc
        if prev is None:
            raise MediaError("the video stream holds no frames", item=str(path))
        last_end = prev[0] + frame_dur
        while True:
            target = start + i * step
            if target >= last_end - eps or (end is not None and target >= end - eps):
                return
            if prev_rgb is None:
                prev_rgb = convert(prev[1])
            yield prev_rgb
            i += 1
    finally:
        container.close()


def read_frames(path: str | Path) -> np.ndarray:
    """Every decoded frame of a (clip) video as uint8 ``(T, H, W, 3)``."""
    with open_container(path) as container:
        if not container.streams.video:
            raise MissingStreamError("no video stream", item=str(path))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    if not frames:
        raise MediaError("the video holds no frames", item=str(path))
    return np.stack(frames)


def decoded_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Stream every decoded frame of a video as uint8 ``(H, W, 3)``."""
    with open_container(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for f in container.decode(stream):
            yield f.to_ndarray(format="rgb24")


def count_frames(path: str | Path) -> int:
    with open_container(path) as container:
        return sum(1 for _ in container.decode(video=0))


def db_full_scale(audio: np.ndarray) -> float:
    """RMS level in dBFS (``-inf`` for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf
