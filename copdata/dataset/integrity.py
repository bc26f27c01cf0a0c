"""Integrity of a built dataset: content hashes of the views and the truth of
each ``clips.jsonl`` row.

At build time every clip row records ``hashes``: the sha256 of each of its five
view files (:func:`view_hashes`). ``copdata validate`` checks them
(:func:`check_hashes`: a file edited, replaced or swapped with another clip's
after the build is found), the row's per-view statistics against the files
(:func:`check_stats`), the rows' spans (:func:`check_spans`: every clip is
``clip_seconds`` long, its id names its source and segment, and the clips of
one source sit at ``offset + segment * clip_seconds``) and, across splits, that
no clip's video and audio are both byte-identical to a clip's of another
split
(:func:`cross_split_duplicates`; the build reports the same).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import av
import numpy as np

from ..hashing import file_sha256
from ..media.decode import db_full_scale
from .rows import ClipRow

HASHED_VIEWS = ("video.mp4", "audio.flac", "notes.mid", "roll.npy", "steps.json")
TIME_TOLERANCE = 1e-5  # seconds; rows store start/end rounded to 1e-6
DBFS_TOLERANCE = 0.05  # dB; rows measure the audio as written (16-bit); float rounding


def view_hashes(clip_dir: str | Path) -> dict[str, str]:
    """``{file name: sha256 hex}`` of the five view files of a clip folder."""
    clip_dir = Path(clip_dir)
    return {name: file_sha256(clip_dir / name) for name in HASHED_VIEWS}


def check_hashes(clip) -> list[str]:
    """Files whose content differs from the hash recorded at build time."""
    recorded = clip.row.extra.get("hashes")
    if recorded is None:
        return []  # reported once for the dataset by :func:`missing_hashes`
    if not isinstance(recorded, dict):
        return ["clips.jsonl row's hashes are not a {file: sha256} object"]
    problems = []
    for name in HASHED_VIEWS:
        path = clip.dir / name
        if name not in recorded:
            problems.append(f"no content hash recorded for {name}")
        elif path.is_file() and file_sha256(path) != recorded[name]:
            problems.append(f"{name} is not the file the build wrote (content hash differs: "
                            "edited, replaced or swapped with another clip's)")
    return problems


def missing_hashes(rows: list[ClipRow]) -> list[str]:
    """One line when rows carry no content hashes (a build by an older copdata)."""
    without = [r.id for r in rows if r.extra.get("hashes") is None]
    if not without:
        return []
    return [f"clips.jsonl: {len(without)} of {len(rows)} rows have no content hashes (e.g. "
            f"{without[0]}), so tampering with their files cannot be detected; rebuild with "
            "this copdata (copdata build --force) to record them"]


def _differs(name: str, recorded, actual) -> str | None:
    if recorded is None and actual is None:
        return None
    if isinstance(actual, float) and isinstance(recorded, (int, float)):
        if abs(recorded - actual) <= DBFS_TOLERANCE:
            return None
    elif recorded == actual:
        return None
    return f"stats.{name} is {recorded!r} in clips.jsonl but {actual!r} in the files"


def _peak_dbfs(audio: np.ndarray) -> float | None:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return round(20 * math.log10(peak), 2) if peak > 0 else None


def check_stats(clip) -> list[str]:
    """The row's ``stats`` recomputed from the clip's files."""
    stats = clip.row.stats.to_dict()
    try:
        audio = clip.audio()
        notes = clip.notes()
        roll = clip.roll()
        with av.open(str(clip.dir / "video.mp4")) as container:
            ctx = container.streams.video[0].codec_context
            width, height = ctx.width, ctx.height
    except Exception as exc:  # a view that does not load is reported by the contract checks
        return [f"stats cannot be checked: {exc}"]
    level = db_full_scale(audio) if np.any(audio) else None
    actual = {
        "frames": int(roll.shape[0]),
        "width": int(width),
        "height": int(height),
        "samples": int(len(audio)),
        "audio_rms_dbfs": round(level, 2) if level is not None and math.isfinite(level) else None,
        "notes": len(notes),
        "notes_per_second": round(len(notes) / clip.seconds, 4),
        "pitch_min": min((n.pitch for n in notes), default=None),
        "pitch_max": max((n.pitch for n in notes), default=None),
        "velocity_min": min((n.velocity for n in notes), default=None),
        "velocity_max": max((n.velocity for n in notes), default=None),
        "active_frames": int(roll.any(axis=1).sum()),
        "audio_peak_dbfs": _peak_dbfs(audio),
    }
    problems = []
    for name, value in actual.items():
        if name in stats:
            problem = _differs(name, stats[name], value)
            if problem:
                problems.append(problem)
    return problems


def check_spans(rows: list[ClipRow], clip_seconds: float) -> list[str]:
    """``start``/``end``/``segment`` of every row, per source."""
    problems = []
    offsets: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for row in rows:
        cid, start, end, segment = row.id, row.start, row.end, row.segment
        if start < 0 or abs((end - start) - clip_seconds) > TIME_TOLERANCE:
            problems.append(f"{cid}: span [{start}, {end}] is not {clip_seconds:g} s from t >= 0")
        if cid.rsplit(".", 1) != [row.source_id, f"{int(segment):08d}"]:
            problems.append(f"{cid}: id does not name source {row.source_id!r} and "
                            f"segment {segment}")
        offsets[row.source_id].append((start - segment * clip_seconds, cid))
    for source_id, found in offsets.items():
        base = found[0][0]
        for offset, cid in found[1:]:
            if abs(offset - base) > TIME_TOLERANCE:
                problems.append(f"{cid}: start is not {source_id}'s first clip start + "
                                f"segment * {clip_seconds:g} s")
    return problems


def cross_split_duplicates(rows) -> list[str]:
    """Clips whose video and audio files are both byte-identical (same recorded
    sha256) to a clip's of another split: the same content in train and test
    leaks. (One view alone is not enough: digital silence, for one, encodes to
    the same FLAC in any source.) ``rows`` are :class:`ClipRow` or their dicts."""
    first: dict[tuple[str, str], tuple[str, str]] = {}  # (video, audio sha256) -> (id, split)
    problems = []
    for row in rows:
        data = row if isinstance(row, dict) else row.to_dict()
        hashes = data.get("hashes")
        if not isinstance(hashes, dict):
            continue
        key = (hashes.get("video.mp4"), hashes.get("audio.flac"))
        if not all(isinstance(h, str) for h in key):
            continue
        seen = first.setdefault(key, (data.get("id"), data.get("split")))
        if seen[1] != data.get("split"):
            problems.append(f"{data.get('id')}: video.mp4 and audio.flac are byte-identical to "
                            f"{seen[0]}'s (sha256 {key[0][:12]}, {key[1][:12]}) but the clips "
                            f"are in splits {data.get('split')!r} and {seen[1]!r} (leakage): "
                            "remove one of the sources")
    return problems
