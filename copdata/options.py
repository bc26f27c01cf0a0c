"""Numeric command-line options checked when they are parsed, and the bounds
on what one source item may allocate.

``number(int|float, lo, hi)`` is an argparse ``type=``: a value that is not a
finite number inside ``[lo, hi]`` is a usage error (exit 2, one line naming the
option's range) before any work starts, instead of a failure per item, an
endless loop (``--item-seconds inf``) or a kernel OOM kill
(``--clip-seconds 1e-9``).
"""

from __future__ import annotations

import argparse
import math

MAX_ITEM_SECONDS = 3600.0  # one synth item (performance or MIDI file): ~0.6 GB of float32 audio
MAX_NOTES_PER_ITEM = 100_000  # ~28 notes/s for an hour: far above any human performance
LIMITS = {
    "clip_seconds": (0.1, 600.0),
    "fps": (1.0, 240.0),
    "sample_rate": (8000, 192000),
}


def number(kind: type, lo: float | None = None, hi: float | None = None):
    """An argparse ``type`` for a finite ``kind`` (int or float) in ``[lo, hi]``."""
    def parse(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            where = (f"in [{lo:g}, {hi:g}]" if lo is not None and hi is not None else
                     f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {where}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its message
    return parse
