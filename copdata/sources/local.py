"""The ``local`` source: video files on disk, audio transcribed to MIDI.

``--input`` is a folder of videos (every file with a video extension, sorted by
name) or a CSV with a ``path`` column (relative to the CSV's folder) and optional
``split``, crop box ``crop_x0, crop_y0, crop_x1, crop_y1`` (source pixels),
``start`` and ``end`` (seconds). :func:`performance_from_files` is shared with
sources that download files first (YouTube).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import replace
from pathlib import Path

from ..errors import ManifestError, MediaError, MissingStreamError
from ..ids import sanitize_source_id
from ..media import iter_frames, probe, read_audio
from .base import (BuildSettings, Performance, Source, SourceItem, assign_splits,
                   cross_split_problem, read_manifest_text, split_problem)

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts"}
CROP_COLUMNS = ("crop_x0", "crop_y0", "crop_x1", "crop_y1")


def parse_crop(row: dict, label: str) -> tuple[int, int, int, int] | None:
    values = [str(row.get(c) or "").strip() for c in CROP_COLUMNS]
    if not any(values):
        return None
    try:
        x0, y0, x1, y1 = (int(float(v)) for v in values)
    except ValueError:
        raise ManifestError(f"crop box {values} must be four numbers", item=label) from None
    if x1 <= x0 or y1 <= y0 or x0 < 0 or y0 < 0:
        raise ManifestError(f"crop box {values} is empty or negative (need x0<x1, y0<y1)",
                            item=label)
    return x0, y0, x1, y1


def parse_time(value, name: str, label: str) -> float | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ManifestError(f"{name}={text!r} is not a number of seconds", item=label) from None
    if seconds < 0:
        raise ManifestError(f"{name}={text!r} is negative", item=label)
    return seconds


def performance_from_files(video_path: str | Path, audio_path: str | Path | None,
                           item: SourceItem, settings: BuildSettings) -> Performance:
    """Decode a recorded performance: audio from ``audio_path`` (or the video file),
    frames from ``video_path`` at the build fps with the item's crop box,
    both trimmed to ``[item.start, item.end]``. Notes are left to the pipeline."""
    video_path = Path(video_path)
    vinfo = probe(video_path)
    if not vinfo.has_video:
        raise MissingStreamError("no video stream", item=item.label)
    if audio_path is None and not vinfo.has_audio:
        raise MissingStreamError("the video has no audio stream; the CoP clip needs the "
                                 "performance's sound (give a file with audio)", item=item.label)
    start = item.start or 0.0
    if item.end is not None and item.end <= start:
        raise ManifestError(f"end {item.end} is not after start {start}", item=item.label)
    audio, _ = read_audio(audio_path or video_path, settings.sample_rate, start, item.end)
    video_seconds = (vinfo.video_duration or vinfo.duration) - start
    if item.end is not None:
        video_seconds = min(video_seconds, item.end - start)
    duration = min(len(audio) / settings.sample_rate, video_seconds)
    if duration <= 0:
        raise MediaError(f"nothing to read after start={start:g} s", item=item.label)
    crop, size = item.crop, settings.frame_size
    end = start + duration

    def frames():
        return iter_frames(video_path, settings.fps, start=start, end=end, crop=crop, size=size,
                           rgb=False)

    meta = dict(item.meta)
    meta.setdefault("file", video_path.name)
    return Performance(audio=audio, duration=duration, frames=frames, notes=None,
                       midi_origin="transcription", meta=meta)


class LocalSource(Source):
    """Videos in a folder or listed in a CSV; MIDI by transcription of their audio."""

    name = "local"

    def __init__(self, input_path: str | Path, test_fraction: float = 0.2, seed: int = 0):
        self.input_path = Path(input_path)
        self.test_fraction = float(test_fraction)
        self.seed = int(seed)
        if not self.input_path.exists():
            raise ManifestError("input folder or CSV not found", item=str(self.input_path))

    @property
    def transcribes(self) -> bool:
        return True

    def describe(self) -> dict:
        return {"name": self.name, "input": str(self.input_path),
                "test_fraction": self.test_fraction, "seed": self.seed}

    def _unique_id(self, path: Path, seen: set, salt: str = "") -> str:
        """The sanitized file stem; a repeated one gets a hash of the path (and
        ``salt``, e.g. the CSV line, when one file is listed twice)."""
        sid = sanitize_source_id(path.stem)
        if sid in seen:
            digest = hashlib.sha1(f"{path}|{salt}".encode()).hexdigest()[:8]
            sid = sanitize_source_id(f"{path.stem}-{digest}")
        seen.add(sid)
        return sid

    def items(self) -> list[SourceItem]:
        seen: set = set()
        if self.input_path.is_dir():
            return self._folder_items(seen)
        return self._csv_items(seen)

    def _folder_items(self, seen: set) -> list[SourceItem]:
        """Every video file of the folder; a video-named entry that cannot be read
        as a file (a symlink loop or a dangling link) becomes a failed item."""
        paths, problems = [], {}
        for p in sorted(self.input_path.iterdir()):
            if p.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            try:
                p.stat()
            except OSError as exc:  # ELOOP, dangling link, permission
                problems[p] = (f"{p.name}: cannot open ({exc.strerror or exc}); "
                               "a symlink loop or a dangling link?")
                paths.append(p)
                continue
            if p.is_file():
                paths.append(p)
        if not paths:
            raise ManifestError(f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) in "
                                "the folder", item=str(self.input_path))
        ids = [self._unique_id(p, seen) for p in paths]
        splits = assign_splits(ids, self.seed, self.test_fraction)
        out = []
        for sid, p in zip(ids, paths):
            meta = {"path": str(p)}
            if p in problems:
                meta["manifest_error"] = problems[p]
            out.append(SourceItem(source_id=sid, label=str(p), split=splits[sid], meta=meta))
        return out

    def _csv_items(self, seen: set) -> list[SourceItem]:
        text = read_manifest_text(self.input_path)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = [f.strip() for f in (reader.fieldnames or [])]
        if "path" not in fields:
            raise ManifestError(f"the CSV needs a 'path' column (header: {fields})",
                                item=str(self.input_path))
        reader.fieldnames = fields
        rows = list(reader)
        if not rows:
            raise ManifestError("the CSV has a header but no rows; list one video per row",
                                item=str(self.input_path))
        out = []
        first_sid: dict[str, str] = {}  # resolved file -> id of its first row
        for line, row in enumerate(rows, start=2):
            raw = (row.get("path") or "").strip()
            path = (self.input_path.parent / raw) if raw else self.input_path.parent
            label = f"{self.input_path.name}:{line}:{raw}"
            sid = self._unique_id(Path(raw or f"row{line}"), seen, salt=str(line))
            meta = {"path": str(path), "row": line}
            problems = []
            try:
                crop = parse_crop(row, label)
                start = parse_time(row.get("start"), "start", label)
                end = parse_time(row.get("end"), "end", label)
            except ManifestError as exc:
                crop = start = end = None
                problems.append(str(exc))
            if not raw:
                problems.append(f"{label}: empty 'path'")
            split = (row.get("split") or "").strip()
            if split and split_problem(split):
                problems.append(f"{label}: {split_problem(split)}")
                split = "invalid"
            if problems:
                meta["manifest_error"] = "; ".join(problems)
            key = str(path.resolve()) if raw else sid
            meta["split_key"] = first_sid.setdefault(key, sid)
            out.append(SourceItem(source_id=sid, label=label, split=split, meta=meta, crop=crop,
                                  start=start, end=end))
        # Rows without a split get one from their file's first row, so one file
        # listed twice never lands in both splits by chance.
        keys = sorted({item.meta["split_key"] for item in out if not item.split})
        splits = assign_splits(keys, self.seed, self.test_fraction)
        out = [replace(item, split=splits[item.meta["split_key"]]) if not item.split else item
               for item in out]
        first_split: dict = {}
        checked = []
        for item in out:
            problem = cross_split_problem(item.meta["split_key"], item.split, first_split,
                                          item.label)
            meta = {k: v for k, v in item.meta.items() if k != "split_key"}
            if problem and "manifest_error" not in meta:
                meta["manifest_error"] = f"{item.label}: {problem}"
            checked.append(replace(item, meta=meta))
        return checked

    def fetch(self, item: SourceItem, settings: BuildSettings) -> Performance:
        if item.meta.get("manifest_error"):
            raise ManifestError(item.meta["manifest_error"])
        perf = performance_from_files(item.meta["path"], None, item, settings)
        perf.meta = {k: v for k, v in perf.meta.items() if k not in ("path", "row")}
        return perf
