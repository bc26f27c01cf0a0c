"""Keyboard detection on a video file (``copdata detect-keyboard``, ``--auto-crop``).

:func:`sample_frames` decodes ``count`` frames spread evenly over
``[start, end)`` of a video (one seek per frame, so a long video costs no more
than a short one); :func:`detect_keyboard_in_video` runs
:func:`copdata.qa.keyboard.detect_keyboard` on them (their median removes
moving hands). The box is in source pixels, ``x1``/``y1`` exclusive, like the
manifests' crop boxes.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from ..errors import MediaError, MissingStreamError
from .keyboard import KeyboardBox, detect_keyboard

DEFAULT_FRAMES = 7


def sample_frames(path: str | Path, count: int = DEFAULT_FRAMES, start: float = 0.0,
                  end: float | None = None) -> list[np.ndarray]:
    """``count`` RGB frames at times ``start + (k + 0.5) * (end - start) / count``."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot open: {exc}", item=str(path)) from None
    with container:
        if not container.streams.video:
            raise MissingStreamError("no video stream", item=str(path))
        stream = container.streams.video[0]
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        stop = end if end is not None else (duration or start + 1.0)
        frames = []
        for k in range(count):
            t = start + (k + 0.5) * (stop - start) / count
            try:
                container.seek(int(t / stream.time_base), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if frame.time is None or frame.time >= t - 1e-3:
                        frames.append(frame.to_ndarray(format="rgb24"))
                        break
            except av.error.FFmpegError as exc:
                raise MediaError(f"cannot decode at {t:.2f} s: {exc}", item=str(path)) from None
    if len(frames) < count:  # the header claims more than the stream holds (a 10 h MKV
        frames = _frames_from_start(path, count, start, end) or frames  # of 3 s of frames)
    if not frames:
        raise MediaError("no frame could be decoded", item=str(path))
    return frames


def _frames_from_start(path, count: int, start: float, end: float | None,
                       max_frames: int = 20_000) -> list[np.ndarray]:
    """``count`` frames spread over what actually decodes from ``start`` (at most
    ``max_frames`` frames read): the fallback when seeks by the claimed duration
    land past the real end."""
    kept, stride, read = [], 1, 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else 0.0
                if t < start - 1e-3:
                    continue
                if (end is not None and t >= end) or read >= max_frames:
                    break
                if read % stride == 0:
                    kept.append(frame)
                read += 1
                if len(kept) > 4 * count:  # thin out, keeping an even spread
                    kept, stride = kept[::2], stride * 2
    except av.error.FFmpegError:
        pass
    if not kept:
        return []
    picks = sorted({min(int((k + 0.5) * len(kept) / count), len(kept) - 1) for k in range(count)})
    return [kept[i].to_ndarray(format="rgb24") for i in picks]


def detect_keyboard_in_video(path: str | Path, frames: int = DEFAULT_FRAMES, start: float = 0.0,
                             end: float | None = None) -> tuple[KeyboardBox, list[np.ndarray]]:
    """The keyboard box of a video and the frames it was found on."""
    sampled = sample_frames(path, frames, start, end)
    return detect_keyboard(sampled), sampled


def draw_box(frame: np.ndarray, box, out: str | Path, label: str = "") -> Path:
    """Save ``frame`` as a PNG with ``box`` drawn (red, 3 px) and ``label``."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    if box is not None:
        x0, y0, x1, y1 = box
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(255, 0, 0), width=3)
    if label:
        draw.text((8, 8), label, fill=(255, 0, 0))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out
