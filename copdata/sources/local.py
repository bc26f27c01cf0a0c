"""The ``local`` source: video files on disk, audio transcribed to MIDI.

``--input`` is a folder of videos (every file in it, sorted by name, whatever its
extension: any container PyAV opens is accepted; a file that does not open, or
has no video or audio stream, is a failed row of ``report.json``) or a CSV with a ``path`` column (relative to the CSV's folder) and the
columns every manifest shares (:mod:`copdata.sources.manifest`): ``split``
(empty: assigned by hash), crop box ``crop_x0, crop_y0, crop_x1, crop_y1``
(source pixels), ``start`` and ``end`` (seconds), ``max_segments``, ``id``. :func:`performance_from_files` is shared with
sources that download files first (YouTube).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from ..errors import ManifestError, MediaError, MissingStreamError
from ..ids import sanitize_source_id
from ..media.blocks import iter_audio_blocks
from ..media.decode import iter_frames, probe
from .base import (BuildSettings, Performance, Source, SourceItem, assign_splits,
                   cross_split_problem)
from .manifest import CommonFields, RowError, cell, item_meta, parse_common, read_rows

NAME = "local"
HELP = "video files (a folder or a CSV), audio transcribed"


def performance_from_files(video_path: str | Path, audio_path: str | Path | None,
                           item: SourceItem, settings: BuildSettings) -> Performance:
    """A recorded performance: audio streamed from ``audio_path`` (or the video
    file), frames from ``video_path`` at the build fps with the item's crop
    box, both trimmed to ``[item.start, item.end]``. Nothing is decoded here
    but the first audio samples (to fail early on an undecodable stream); the
    usable duration is the shorter of the declared audio and video lengths.
    Notes are left to the pipeline. With ``settings.auto_crop`` and no crop
    box, the keyboard box is detected
    (:func:`copdata.qa.detect.detect_keyboard_in_video`, from either long
    side, tilted up to 20 degrees) and recorded in ``meta["auto_crop"]``
    (``{"box": ..., "confidence": ..., "angle_deg": ..., "flipped": ...}``); a
    tilted or far-side keyboard is turned upright with its low keys on the left
    (:func:`copdata.qa.orient.strip_matrix`)."""
    video_path = Path(video_path)
    vinfo = probe(video_path)
    if not vinfo.has_video:
        raise MissingStreamError("no video stream", item=item.label)
    if audio_path is None and not vinfo.has_audio:
        raise MissingStreamError("the video has no audio stream; the CoP clip needs the "
                                 "performance's sound (give a file with audio)", item=item.label)
    ainfo = vinfo if audio_path is None else probe(audio_path)
    if not ainfo.has_audio:
        raise MissingStreamError("the audio file has no audio stream", item=str(audio_path))
    start = item.start or 0.0
    if item.end is not None and item.end <= start:
        raise ManifestError(f"end {item.end} is not after start {start}", item=item.label)
    audio_file = Path(audio_path or video_path)
    sample_rate = settings.sample_rate

    def audio_stream():
        return iter_audio_blocks(audio_file, sample_rate, start, item.end)

    next(audio_stream(), None)  # raises MediaError now if the audio does not decode
    audio_seconds = (ainfo.audio_duration or ainfo.duration) - start
    video_seconds = (vinfo.video_duration or vinfo.duration) - start
    duration = min(audio_seconds, video_seconds)
    if item.end is not None:
        duration = min(duration, item.end - start)
    if duration <= 0:
        raise MediaError(f"nothing to read after start={start:g} s", item=item.label)
    crop, size = item.crop, settings.frame_size
    end = start + duration
    meta = dict(item.meta)
    warp = None
    if crop is None and settings.auto_crop:
        from ..qa.detect import detect_keyboard_in_video

        found, _ = detect_keyboard_in_video(video_path, start=start, end=end)
        meta["auto_crop"] = found.to_dict()  # box None: no keyboard found, frames kept whole
        crop = found.box
        if found.box is not None and not found.upright:
            from ..qa.orient import strip_matrix

            matrix, strip_w, strip_h = strip_matrix(found.frame_size, found.rotation_deg,
                                                    found.strip_box, found.mirrored)
            warp = (matrix, (strip_w, strip_h))

    def frames():
        return iter_frames(video_path, settings.fps, start=start, end=end, crop=crop, size=size,
                           rgb=False, warp=warp)

    meta.setdefault("file", video_path.name)
    return Performance(duration=duration, frames=frames, audio_stream=audio_stream, notes=None,
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
        """Every entry of the folder but sub-folders: each file is an item (one
        that PyAV cannot open fails in :meth:`fetch` with a report row); an
        entry that cannot be read as a file (a symlink loop or a dangling link)
        becomes a failed item."""
        paths, problems = [], {}
        for p in sorted(self.input_path.iterdir()):
            if p.is_dir():
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
            else:  # a FIFO, socket or device: never opened, never skipped silently
                problems[p] = f"{p.name}: not a regular file"
                paths.append(p)
        if not paths:
            raise ManifestError("the folder holds no files", item=str(self.input_path))
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
        _, rows = read_rows(self.input_path, ("path",), no_rows="list one video per row")
        out = []
        first_sid: dict[str, str] = {}  # resolved file -> id of its first row
        for row in rows:
            raw = cell(row, "path")
            path = (self.input_path.parent / raw) if raw else self.input_path.parent
            label = f"{row.where}:{raw}"
            meta = {"path": str(path), "row": row.line}
            try:
                fields = parse_common(row, {"path"})
                if not raw:
                    raise RowError("empty 'path'")
            except RowError as exc:
                fields = CommonFields()
                meta["manifest_error"] = f"{row.where}: {exc}"
            if fields.source_id is not None:
                sid = fields.source_id
                if sid in seen:
                    fields = CommonFields()
                    meta["manifest_error"] = f"{row.where}: source id {sid!r} repeats an earlier row"
                    sid = self._unique_id(Path(raw or f"row{row.line}"), seen, salt=str(row.line))
                seen.add(sid)
            else:
                sid = self._unique_id(Path(raw or f"row{row.line}"), seen, salt=str(row.line))
            meta.update(item_meta(fields))
            key = str(path.resolve()) if raw else sid
            meta["split_key"] = first_sid.setdefault(key, sid)
            out.append(SourceItem(source_id=sid, label=label, split=fields.split or "",
                                  meta=meta, crop=fields.crop, start=fields.start, end=fields.end))
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


def add_cli_arguments(group) -> None:
    """Options of ``copdata build --source local``."""
    group.add_argument("--input", default=None,
                       help="folder of videos, or CSV with a path column and the shared manifest "
                            "columns (split, crop box, start/end, ...; see manifests/README.md)")


def source_from_args(args) -> LocalSource:
    if not args.input:
        raise ManifestError("--source local needs --input FOLDER_OR_CSV")
    return LocalSource(args.input, test_fraction=args.test_fraction, seed=args.seed)
