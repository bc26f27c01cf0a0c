"""The build pipeline: source items -> fetch -> (transcribe) -> clips -> writer.

:func:`build_dataset` is what ``copdata build`` runs. Items are independent and
processed by :func:`process_item` in worker processes (``executor="local"``) or
on a Ray cluster (``executor="ray"``); the same function runs either way, so the
output is identical. Each finished item leaves a state file under ``.state/``
(written after its clips are renamed into place), so killing a build at any
moment and rerunning it resumes where it stopped. ``clips.jsonl`` and
``report.json`` are rewritten from the state files at the end of every run.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import shutil
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

from . import __version__
from .dataset import (SCHEMA_VERSION, ClipWriter, check_ours_to_delete, derive_views,
                      remove_partial_clips, write_json_atomic)
from .errors import (BuildLockedError, CopDataError, DatasetError, ManifestError,
                     SilentInputError, TooShortError)
from .integrity import view_hashes
from .workers import init_worker
from .ids import check_split_name, clip_id, sanitize_source_id
from .media import db_full_scale
from .notes import segment_notes
from .sources.base import BuildSettings, Source, SourceItem

log = logging.getLogger(__name__)
STATE_DIR = ".state"
SILENCE_DBFS = -80.0


@dataclass
class BuildSummary:
    out_dir: str
    items: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # finished by an earlier run
    clips: int = 0
    seconds: float = 0.0  # audio seconds in clips
    wall_seconds: float = 0.0
    failures_by_class: dict = field(default_factory=dict)

    @property
    def realtime_factor(self) -> float:
        return self.seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def line(self) -> str:
        fails = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures_by_class.items()))
        return (f"{self.ok}/{self.items} items ok, {self.failed} failed"
                + (f" ({fails})" if fails else "")
                + f"; {self.clips} clips, {self.seconds / 3600:.3f} h"
                + (f"; {self.skipped} items resumed from an earlier run" if self.skipped else "")
                + f"; {self.wall_seconds:.1f} s wall, {self.realtime_factor:.1f}x realtime")


# ------------------------------------------------------------------ per item

def _clip_row(item: SourceItem, segment: int, cid: str, t0: float, settings: BuildSettings,
              views, audio: np.ndarray, frame_shape, midi_origin: str, meta: dict) -> dict:
    notes = views.notes
    offset = item.start or 0.0
    return {
        "id": cid,
        "split": item.split,
        "source_id": item.source_id,
        "source": item.label,
        "segment": segment,
        "start": round(offset + t0, 6),
        "end": round(offset + t0 + settings.clip_seconds, 6),
        "midi_origin": midi_origin,
        "meta": meta,
        "stats": {
            "frames": settings.frames_per_clip,
            "width": int(frame_shape[1]),
            "height": int(frame_shape[0]),
            "samples": int(len(audio)),
            "audio_rms_dbfs": round(db_full_scale(audio), 2) if np.any(audio) else None,
            "notes": len(notes),
            "notes_per_second": round(len(notes) / settings.clip_seconds, 4),
            "pitch_min": min((n.pitch for n in notes), default=None),
            "pitch_max": max((n.pitch for n in notes), default=None),
            "velocity_min": min((n.velocity for n in notes), default=None),
            "velocity_max": max((n.velocity for n in notes), default=None),
            "active_frames": int(views.roll.any(axis=1).sum()),
        },
    }


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


def _segments(duration: float, item: SourceItem, settings: BuildSettings) -> int:
    # Container durations are rounded to their time base: allow half a frame.
    count = int(math.floor((duration + 0.5 / settings.fps) / settings.clip_seconds))
    limits = [settings.max_clips_per_item, item.meta.get("max_segments")]
    for limit in limits:
        if limit is not None and str(limit) != "":
            count = min(count, int(limit))
    return count


def _fill_clip(frames: Iterator[np.ndarray], count: int, encoder) -> tuple[int, tuple]:
    shape = ()
    written = 0
    for _ in range(count):
        try:
            rgb = next(frames)
        except StopIteration:
            break
        shape = (rgb.height, rgb.width, 3) if hasattr(rgb, "height") else rgb.shape
        if encoder is not None:
            encoder.write(rgb)
        written += 1
    return written, shape


def process_item(source: Source, item: SourceItem, settings: BuildSettings, out_dir: str) -> dict:
    """Fetch one item and write its clips; returns its report row with clip rows.

    Never raises for bad input: a :class:`CopDataError` becomes a failed row with
    its class and message; anything else a failed ``InternalError`` row. A
    failed item leaves no clips behind.
    """
    started = time.perf_counter()
    row = {"source_id": item.source_id, "source": item.label, "split": item.split}
    written: list[Path] = []
    try:
        try:
            check_split_name(item.split)
        except ValueError as exc:  # every source's splits, checked before any write
            raise ManifestError(str(exc), item=item.label) from None
        perf = source.fetch(item, settings)
        sr, fps = settings.sample_rate, settings.fps
        notes, origin = perf.notes, perf.midi_origin
        if notes is None:
            if db_full_scale(perf.audio) < SILENCE_DBFS:
                raise SilentInputError(f"audio is silent (below {SILENCE_DBFS:g} dBFS); nothing "
                                       "to transcribe", item=item.label)
            from .transcribe import get_transcriber

            notes = get_transcriber(onset_threshold=settings.onset_threshold,
                                    frame_threshold=settings.frame_threshold,
                                    min_note_ms=settings.min_note_ms).transcribe(perf.audio, sr)
            origin = "transcription"
        count = _segments(perf.duration, item, settings)
        if count < 1:
            raise TooShortError(f"usable length {perf.duration:.2f} s is shorter than one "
                                f"{settings.clip_seconds:g} s clip", item=item.label)
        frames = perf.frames()
        F, S = settings.frames_per_clip, settings.samples_per_clip
        clip_rows, cursor = [], 0
        for k in range(count):
            t0 = k * settings.clip_seconds
            first = int(round(t0 * fps))
            skipped, _ = _fill_clip(frames, first - cursor, None)  # frames between clips
            cursor += skipped
            if cursor < first:
                break
            a0 = int(round(t0 * sr))
            audio = perf.audio[a0:a0 + S]
            if len(audio) < S:
                row["warning"] = (f"audio ended at {len(perf.audio) / sr:.3f} s, inside clip {k}")
                break
            cid = clip_id(item.source_id, k)
            meta = clip_meta(perf.meta, t0, t0 + settings.clip_seconds)
            views = derive_views(segment_notes(notes, t0, t0 + settings.clip_seconds),
                                 settings.clip_seconds, fps, F, meta)
            writer = ClipWriter(out_dir, cid)
            try:
                if writer.final.exists():  # finished by an interrupted earlier run
                    n, shape = _fill_clip(frames, F, None)
                    writer.abort()
                else:
                    with writer.video_encoder(fps, settings.video_preset, settings.video_crf) as enc:
                        n, shape = _fill_clip(frames, F, enc)
                    if n == F:
                        writer.write_views(audio, sr, views)
                        writer.commit()
                        written.append(writer.final)
            finally:
                writer.abort()
            cursor += n
            if n < F:
                row["warning"] = (f"video ended at {cursor / fps:.2f} s, before the "
                                  f"{perf.duration:.2f} s the container declares")
                break
            clip_row = _clip_row(item, k, cid, t0, settings, views, audio, shape, origin, meta)
            clip_row["hashes"] = view_hashes(writer.final)  # checked by copdata validate
            clip_rows.append(clip_row)
        if not clip_rows:
            raise TooShortError("no complete clip could be cut (the video stream is shorter "
                                "than one clip)", item=item.label)
        row.update(status="ok", clips=len(clip_rows), seconds=len(clip_rows) * settings.clip_seconds,
                   midi_origin=origin, rows=clip_rows)
    except CopDataError as exc:
        row.update(status="failed", error_class=exc.error_class, message=str(exc), clips=0)
    except Exception as exc:  # a bug or an unexpected library error: report, don't crash
        log.debug("item %s failed:\n%s", item.label, traceback.format_exc())
        row.update(status="failed", error_class=f"InternalError.{type(exc).__name__}",
                   message=f"{item.label}: {exc}", clips=0)
    if row["status"] != "ok":
        for path in written:
            shutil.rmtree(path, ignore_errors=True)
    row["wall_seconds"] = round(time.perf_counter() - started, 3)
    return row


# ------------------------------------------------------------------ executors

def _run_local(source, items, settings, out_dir, workers) -> Iterator[dict]:
    if workers <= 1:
        for item in items:
            yield process_item(source, item, settings, out_dir)
        return
    share = max(1, len(os.sched_getaffinity(0)) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=init_worker, initargs=(share, os.getpid())) as pool:
        futures = [pool.submit(process_item, source, item, settings, out_dir) for item in items]
        for future in as_completed(futures):
            yield future.result()


def _run_ray(source, items, settings, out_dir, workers, address) -> Iterator[dict]:
    try:
        import ray
    except ImportError as exc:
        raise CopDataError("the Ray executor needs Ray: pip install 'ray>=2.9'") from exc
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": max(workers, 1)}
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, **kwargs)
    remote = ray.remote(num_cpus=1)(process_item)
    source_ref = ray.put(source)
    pending = [remote.remote(source_ref, item, settings, out_dir) for item in items]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


# ------------------------------------------------------------------ the build

class _Lock:
    """An exclusive ``flock`` on ``DIR/.lock``; released by the kernel even on SIGKILL."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / ".lock"
        self.fh = None

    def __enter__(self):
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise BuildLockedError("another build is running on this output folder (it holds "
                                   f"{self.path}); wait for it or choose another --out",
                                   item=str(self.path.parent)) from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"{os.getpid()}\n")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def dataset_settings(source: Source, settings: BuildSettings) -> dict:
    info = {
        "schema_version": SCHEMA_VERSION,
        "fps": settings.fps,
        "sample_rate": settings.sample_rate,
        "clip_seconds": settings.clip_seconds,
        "frames_per_clip": settings.frames_per_clip,
        "samples_per_clip": settings.samples_per_clip,
        "source": source.describe(),
        "midi_origin": "transcription" if source.transcribes else "ground_truth",
        "transcriber": None,
        "roll": {"keys": 88, "lowest_pitch": 21, "dtype": "uint8",
                 "frame": "frame i covers [i/fps, (i+1)/fps); a note overlapping it is on; "
                          "value = max velocity"},
        "build": {k: v for k, v in asdict(settings).items()},
        "copdata_version": __version__,
    }
    if source.transcribes:
        from .transcribe import get_transcriber

        transcriber = get_transcriber(
            onset_threshold=settings.onset_threshold, frame_threshold=settings.frame_threshold,
            min_note_ms=settings.min_note_ms).info()
        transcriber.pop("threads", None)  # a runtime choice, not part of the output
        info["transcriber"] = transcriber
    return info


# Provenance that a resumed build may change without changing the output.
_IGNORED_ON_RESUME = ("copdata_version",)
_IGNORED_SOURCE_KEYS_ON_RESUME = ("downloader",)


def _output_settings(info: dict) -> dict:
    out = {k: v for k, v in info.items() if k not in _IGNORED_ON_RESUME}
    if isinstance(out.get("source"), dict):
        out["source"] = {k: v for k, v in out["source"].items()
                         if k not in _IGNORED_SOURCE_KEYS_ON_RESUME}
    return out


def _state_path(out_dir: Path, source_id: str) -> Path:
    return out_dir / STATE_DIR / f"{source_id}.json"


def _check_ids(items: list[SourceItem]) -> None:
    seen = set()
    for item in items:
        if item.source_id != sanitize_source_id(item.source_id) or item.source_id in seen:
            raise DatasetError(f"source id {item.source_id!r} is unsafe or duplicated",
                               item=item.label)
        seen.add(item.source_id)


def build_dataset(source: Source, out_dir: str | Path, settings: BuildSettings | None = None,
                  workers: int = 1, executor: str = "local", ray_address: str | None = None,
                  force: bool = False, progress: bool = True) -> BuildSummary:
    """Build (or resume) a CoP dataset from ``source`` into ``out_dir``."""
    settings = settings or BuildSettings()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DatasetError("--out is a file, not a folder", item=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".lock").touch()
    except OSError as exc:
        raise DatasetError(f"cannot write the output folder ({exc.strerror or exc})",
                           item=str(out)) from None
    started = time.perf_counter()
    with _Lock(out):
        if force:
            check_ours_to_delete(out, STATE_DIR)
            for name in ("clips", STATE_DIR):
                shutil.rmtree(out / name, ignore_errors=True)
            for name in ("dataset.json", "clips.jsonl", "report.json"):
                (out / name).unlink(missing_ok=True)
        info = dataset_settings(source, settings)
        meta_path = out / "dataset.json"
        if meta_path.exists():
            old = _output_settings(json.loads(meta_path.read_text(encoding="utf-8")))
            if old != _output_settings(info):
                new = _output_settings(info)
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                raise DatasetError(f"the folder holds a build with other settings ({', '.join(changed)}); "
                                   "use --force to rebuild from scratch or choose another --out",
                                   item=str(out))
        else:
            write_json_atomic(meta_path, info)
        remove_partial_clips(out)
        (out / STATE_DIR).mkdir(exist_ok=True)
        items = source.items()
        if not items:
            raise DatasetError("the source lists no items; nothing to build", item=str(out))
        _check_ids(items)
        states: dict[str, dict] = {}
        pending = []
        for item in items:
            path = _state_path(out, item.source_id)
            if path.is_file():
                state = json.loads(path.read_text(encoding="utf-8"))
                if state.get("status") == "ok":
                    states[item.source_id] = state
                    continue
            pending.append(item)
        summary = BuildSummary(out_dir=str(out), items=len(items), skipped=len(states))
        run = (_run_ray(source, pending, settings, str(out), workers, ray_address)
               if executor == "ray" else _run_local(source, pending, settings, str(out), workers))
        bar = tqdm(total=len(items), initial=len(states), unit="item", disable=not progress,
                   desc=f"build {source.name}", dynamic_ncols=True)
        produced, failed = 0.0, 0
        try:
            for row in run:
                write_json_atomic(_state_path(out, row["source_id"]), row)
                states[row["source_id"]] = row
                produced += row.get("seconds", 0.0)
                failed += row["status"] != "ok"
                elapsed = time.perf_counter() - started
                bar.set_postfix(rtf=f"{produced / max(elapsed, 1e-9):.1f}x", failed=failed)
                bar.update(1)
        finally:
            bar.close()
        clip_rows, report = [], []
        for item in items:
            state = states[item.source_id]
            clip_rows.extend(state.get("rows", []))
            report.append({k: v for k, v in state.items() if k != "rows"})
        write_json_atomic(out / "clips.jsonl", clip_rows, lines=True)
        write_json_atomic(out / "report.json", report)
    summary.wall_seconds = time.perf_counter() - started
    for r in report:
        if r["status"] == "ok":
            summary.ok += 1
            summary.clips += r["clips"]
            summary.seconds += r["seconds"]
        else:
            summary.failed += 1
            summary.failures_by_class[r["error_class"]] = summary.failures_by_class.get(r["error_class"], 0) + 1
    return summary
