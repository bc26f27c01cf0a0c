"""Audio as a stream of blocks, so a long source never sits in memory whole.

- :func:`iter_audio_blocks` decodes a file's first audio stream block by block
  (mono float32 at a target rate, libswresample): the one decoding loop;
  :func:`copdata.media.decode.read_audio` is the concatenation of its blocks.
- :func:`array_blocks` cuts an in-memory array into blocks (rendered sources).
- :class:`AudioCursor` takes consecutive spans out of a block stream (the
  audio of one clip after another), holding only what the next span needs.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

from ..errors import MediaError, MissingStreamError
from .container import AV_ERRORS, open_container

BLOCK_SAMPLES = 1 << 16  # ~1.5 s at 44.1 kHz


def iter_audio_blocks(path: str | Path, sample_rate: int, start: float = 0.0,
                      end: float | None = None,
                      block_samples: int = BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """Mono float32 blocks of ``path`` at ``sample_rate`` for ``[start, end)``.

    Sample 0 is time ``start`` (container time, streams starting late are
    padded with zeros as in :func:`copdata.media.decode.read_audio`). Blocks hold
    about ``block_samples`` samples (the last may be shorter). Raises
    :class:`MissingStreamError` without an audio stream and
    :class:`MediaError` when decoding fails (on the block where it fails).
    """
    lo = int(round(start * sample_rate))
    hi = None if end is None else int(round(end * sample_rate))
    with open_container(path) as container:
        if not container.streams.audio:
            raise MissingStreamError("no audio stream; the CoP clip needs the performance's "
                                     "sound", item=str(path))
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=int(sample_rate))
        origin = container.start_time / 1e6 if container.start_time else 0.0
        if start > 1.0:
            container.seek(int(max(start - 1.0, 0) * 1e6))
        pos = None  # stream index of the next decoded sample
        emitted = lo  # stream index of the next sample to yield
        pending: list[np.ndarray] = []
        pending_len = 0
        decoded = 0

        def place(chunk: np.ndarray) -> list[np.ndarray]:
            """The part of ``chunk`` (starting at ``pos``) still to yield, in order."""
            nonlocal pos, emitted
            out = []
            if pos > emitted:  # the stream starts after `start`: silence before it
                gap = pos - emitted if hi is None else max(0, min(pos, hi) - emitted)
                if gap:
                    out.append(np.zeros(gap, np.float32))
                    emitted += gap
            a = max(emitted - pos, 0)
            b = len(chunk) if hi is None else max(0, min(len(chunk), hi - pos))
            if b > a:
                out.append(chunk[a:b])
                emitted = pos + b
            pos += len(chunk)
            return out

        try:
            frames = container.decode(stream)
            for frame in frames:
                if pos is None:
                    first_time = (frame.time if frame.time is not None else origin) - origin
                    pos = int(round(first_time * sample_rate))
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    decoded += len(chunk)
                    for piece in place(chunk):
                        pending.append(piece)
                        pending_len += len(piece)
                if pending_len >= block_samples:
                    yield np.concatenate(pending).astype(np.float32, copy=False)
                    pending, pending_len = [], 0
                if hi is not None and emitted >= hi:
                    break
            else:
                for out in resampler.resample(None):
                    chunk = out.to_ndarray().reshape(-1)
                    decoded += len(chunk)
                    if pos is None:
                        pos = 0
                    pending.extend(place(chunk))
        except AV_ERRORS as exc:
            if not decoded:
                raise MediaError(f"cannot decode audio ({type(exc).__name__}: {exc})",
                                 item=str(path)) from exc
            raise MediaError(f"audio decoding failed after {decoded / sample_rate:.2f} s "
                             f"({type(exc).__name__}: {exc}); the file is truncated or corrupt",
                             item=str(path)) from exc
    if not decoded:
        raise MediaError("the audio stream holds no samples", item=str(path))
    if pending:
        yield np.concatenate(pending).astype(np.float32, copy=False)


def array_blocks(audio: np.ndarray, block_samples: int = BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """Consecutive views of ``audio``, ``block_samples`` long (the last may be shorter)."""
    for i in range(0, len(audio), block_samples):
        yield audio[i:i + block_samples]


class AudioCursor:
    """Consecutive spans of a block stream: ``take(first, n)`` returns samples
    ``[first, first + n)`` (shorter when the stream ends first). Spans must not
    move backwards; samples before the last span's start are dropped."""

    def __init__(self, blocks: Iterable[np.ndarray]):
        self._blocks = iter(blocks)
        self._buffer: deque[np.ndarray] = deque()
        self._start = 0  # stream index of the first buffered sample
        self._end = 0  # stream index after the last buffered sample
        self.exhausted = False

    @property
    def samples_read(self) -> int:
        """Samples pulled from the stream so far (its length once exhausted)."""
        return self._end

    def _drop_before(self, index: int) -> None:
        while self._buffer and self._start + len(self._buffer[0]) <= index:
            self._start += len(self._buffer.popleft())
        if self._buffer and self._start < index:
            self._buffer[0] = self._buffer[0][index - self._start:]
            self._start = index
        if not self._buffer:
            self._start = max(self._start, min(index, self._end))

    def take(self, first: int, n: int) -> np.ndarray:
        if first < self._start:
            raise ValueError(f"span at {first} is before the cursor ({self._start})")
        while self._end < first + n and not self.exhausted:
            block = next(self._blocks, None)
            if block is None:
                self.exhausted = True
                break
            self._buffer.append(np.asarray(block, dtype=np.float32))
            self._end += len(block)
            self._drop_before(first)
        self._drop_before(first)
        if first >= self._end:
            return np.zeros(0, np.float32)
        data = np.concatenate(list(self._buffer)) if len(self._buffer) != 1 else self._buffer[0]
        return np.ascontiguousarray(data[: first + n - self._start])
