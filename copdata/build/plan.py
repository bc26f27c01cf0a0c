"""What an item's stages pass along (:class:`ItemNotes`, :class:`ClipSpan`), and
stage 2: the clip spans an item is cut into, and each clip's metadata."""

from __future__ import annotations

import math
from dataclasses import dataclass


from ..errors import TooShortError
from ..notes import Note
from ..sources.base import BuildSettings, Performance, SourceItem


_STYLE_WORDS = {"two_hand": "two-hand texture", "chords": "chord progression"}


def clip_meta(meta: dict, t0: float, t1: float) -> dict:
    """Source metadata for the clip ``[t0, t1)`` of an item.

    Item-level facts that vary inside a performance (a ``sections`` list with
    style, key and tempo per section) are narrowed to the sections the clip
    overlaps, so the steps never state another section's facts.
    """
    sections = meta.get("sections")
    if not sections:
        return meta
    out = {k: v for k, v in meta.items() if k not in ("sections", "styles", "style", "tempo_bpm", "key")}
    parts = []
    for sec in sections:
        if sec["end"] > t0 and sec["start"] < t1:
            style = sec.get("style", "passage")
            words = [_STYLE_WORDS.get(style, style.replace("_", " "))]
            if sec.get("key"):
                words.append(f"in {sec['key']}")
            if sec.get("tempo_bpm"):
                words.append(f"at {sec['tempo_bpm']:.0f} bpm")
            parts.append(" ".join(words))
    if parts:
        out["style"] = "a " + ", then a ".join(parts)
    return out


@dataclass(frozen=True)
class ClipSpan:
    """Where clip ``segment`` of an item lies: item seconds, first frame and sample."""

    segment: int
    t0: float
    t1: float
    first_frame: int
    first_sample: int


@dataclass
class ItemNotes:
    """The notes stage's result: the fetched performance and its notes (item time)."""

    performance: Performance
    notes: list[Note]
    midi_origin: str  # "ground_truth" or "transcription"
    # gain that fits the item's decoded audio inside full scale (1 / peak when it
    # peaks above 1.0, as decoded AAC/MP3 can); every clip of the item gets it
    audio_gain: float = 1.0


def plan_clips(duration: float, item: SourceItem, settings: BuildSettings) -> list[ClipSpan]:
    """Stage 2: the clip spans that fit in ``duration`` seconds, consecutive from
    t = 0, at most ``settings.max_clips_per_item`` and the item's
    ``max_segments``. Raises :class:`TooShortError` when not even one fits."""
    # Container durations are rounded to their time base: allow half a frame.
    count = int(math.floor((duration + 0.5 / settings.fps) / settings.clip_seconds))
    for limit in (settings.max_clips_per_item, item.meta.get("max_segments")):
        if limit is not None and str(limit) != "":
            count = min(count, int(limit))
    if count < 1:
        raise TooShortError(f"usable length {duration:.2f} s is shorter than one "
                            f"{settings.clip_seconds:g} s clip", item=item.label)
    spans = []
    for k in range(count):
        t0 = k * settings.clip_seconds
        spans.append(ClipSpan(k, t0, t0 + settings.clip_seconds, int(round(t0 * settings.fps)),
                              int(round(t0 * settings.sample_rate))))
    return spans
