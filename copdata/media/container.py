"""Opening a media file with PyAV, and the errors PyAV raises for bad input.

Shared by :mod:`~copdata.media.decode`, :mod:`~copdata.media.blocks` and
:mod:`~copdata.media.download`; a file that does not open is a
:class:`~copdata.errors.MediaError`, never a PyAV exception.
"""

from __future__ import annotations

import os
from pathlib import Path

import av

from ..errors import MediaError

AV_ERRORS = (av.error.FFmpegError, OSError, ValueError, IndexError, RuntimeError)


def open_container(path: str | Path):
    path = str(path)
    if not os.path.exists(path):
        raise MediaError("file not found", item=path)
    if os.path.getsize(path) == 0:
        raise MediaError("file is empty (0 bytes); re-download or remove it", item=path)
    try:
        return av.open(path)
    except AV_ERRORS as exc:
        raise MediaError(f"cannot open media ({type(exc).__name__}: {exc}); the file is "
                         "corrupt, truncated or not a media file", item=path) from exc


def codec_of(stream, path):
    """``stream.codec_context``; PyAV gives ``None`` when the codec id cannot be
    read (a bit-flipped header): a :class:`MediaError`, not an AttributeError."""
    ctx = stream.codec_context
    if ctx is None:
        raise MediaError(f"the {stream.type} stream's codec cannot be read (unknown or "
                         "damaged codec header); the file is corrupt", item=str(path))
    return ctx
