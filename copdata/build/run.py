"""The build itself: :func:`build_dataset` lists the source's items, skips the
ones an earlier run finished (their state files), runs the rest on an executor,
and rewrites ``clips.jsonl`` and ``report.json`` from the state files; the
output folder is locked while it runs."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .. import __version__
from ..dataset.integrity import cross_split_duplicates
from ..dataset.store import (SCHEMA_VERSION, check_ours_to_delete, remove_partial_clips,
                             write_json_atomic)
from ..errors import BuildLockedError, DatasetError
from ..ids import sanitize_source_id
from ..qa.stage import qa_info
from ..sources.base import BuildSettings, Source, SourceItem
from .executors import run_local, run_ray
from .item import settings_transcriber
from .state import STATE_DIR, accepted_seconds, output_settings, rejected_rows, state_path


log = logging.getLogger(__name__)


@dataclass
class BuildSummary:
    out_dir: str
    items: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # finished by an earlier run
    not_queued: int = 0  # left out once --target-hours was reached
    rejected: int = 0  # clips that failed the QA thresholds (rows in report.json)
    clips: int = 0
    accepted_seconds: float = 0.0  # seconds of clips that count toward --target-hours
    seconds: float = 0.0  # audio seconds in clips
    wall_seconds: float = 0.0
    failures_by_class: dict = field(default_factory=dict)
    duplicates: list = field(default_factory=list)  # clips byte-identical across splits

    @property
    def realtime_factor(self) -> float:
        return self.seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def line(self) -> str:
        fails = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures_by_class.items()))
        return (f"{self.ok}/{self.items} items ok, {self.failed} failed"
                + (f" ({fails})" if fails else "")
                + f"; {self.clips} clips, {self.seconds / 3600:.3f} h"
                + (f", {self.rejected} clips rejected by QA" if self.rejected else "")
                + (f"; {self.skipped} items resumed from an earlier run" if self.skipped else "")
                + (f"; {self.not_queued} items not queued (target hours reached: "
                   f"{self.accepted_seconds / 3600:.3f} h accepted)" if self.not_queued else "")
                + (f"; {len(self.duplicates)} clips byte-identical to a clip of another split "
                   f"(leakage; e.g. {self.duplicates[0]})" if self.duplicates else "")
                + f"; {self.wall_seconds:.1f} s wall, {self.realtime_factor:.1f}x realtime")


# ------------------------------------------------------------------ per item


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
        "audio_level": "decoded audio that peaks above full scale is scaled by 1/peak "
                       "(one gain per source item, lowered for a clip that would still clip), "
                       "never hard-clipped; each clip's gain is stats.audio_gain_db and the "
                       "written file's peak stats.audio_peak_dbfs",
        "qa": qa_info(settings, recorded=source.transcribes),
        "copdata_version": __version__,
    }
    if source.transcribes:
        from ..transcription import resolve_transcriber_name, transcriber_info

        # threads and device are runtime choices, not part of the output
        info["transcriber"] = transcriber_info(settings_transcriber(settings), settings.note_post)
        info["build"]["transcriber"] = resolve_transcriber_name(settings.transcriber)
    else:  # ground-truth notes: no transcriber runs (so none is recorded)
        info["build"].update(transcriber=None, note_post=[])
    info["build"].pop("transcriber_device", None)
    return info


def _check_ids(items: list[SourceItem]) -> None:
    seen = set()
    for item in items:
        if item.source_id != sanitize_source_id(item.source_id) or item.source_id in seen:
            raise DatasetError(f"source id {item.source_id!r} is unsafe or duplicated",
                               item=item.label)
        seen.add(item.source_id)


def check_settings(settings: BuildSettings) -> None:
    """Refuse clip settings outside :data:`copdata.options.LIMITS` before any
    work (the CLI refuses them when parsing; this guards the Python API)."""
    import math

    from ..options import LIMITS
    for name, (lo, hi) in LIMITS.items():
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or not lo <= value <= hi:
            raise DatasetError(f"{name} = {value!r} is out of range: must be in [{lo:g}, {hi:g}]")


def build_dataset(source: Source, out_dir: str | Path, settings: BuildSettings | None = None,
                  workers: int = 1, executor: str = "local", ray_address: str | None = None,
                  force: bool = False, progress: bool = True,
                  target_hours: float | None = None) -> BuildSummary:
    """Build (or resume) a CoP dataset from ``source`` into ``out_dir``.

    With ``target_hours``, no new item is queued once the accepted clips
    (:func:`clip_accepted`; clips of items finished by an earlier run count
    too) reach that many hours; items in flight finish, and the items never
    queued are ``not_queued`` rows of ``report.json`` (a rerun with a larger
    target continues with them).
    """
    settings = settings or BuildSettings()
    check_settings(settings)
    if target_hours is not None and not target_hours > 0:
        raise DatasetError(f"target hours must be positive, got {target_hours}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DatasetError("--out is a file, not a folder", item=str(out))
    if force and out.is_dir():
        check_ours_to_delete(out, STATE_DIR)  # before the lock file: a refused folder keeps
        # exactly what it held (checked again under the lock below)
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
            old = output_settings(json.loads(meta_path.read_text(encoding="utf-8")))
            if old != output_settings(info):
                new = output_settings(info)
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
            path = state_path(out, item.source_id)
            if path.is_file():
                state = json.loads(path.read_text(encoding="utf-8"))
                if state.get("status") == "ok":
                    states[item.source_id] = state
                    continue
            pending.append(item)
        summary = BuildSummary(out_dir=str(out), items=len(items), skipped=len(states))
        accepted = sum(accepted_seconds(state) for state in states.values())

        def keep_going() -> bool:
            return target_hours is None or accepted < target_hours * 3600.0

        run = (run_ray(source, pending, settings, str(out), workers, ray_address, keep_going)
               if executor == "ray" else
               run_local(source, pending, settings, str(out), workers, keep_going))
        bar = tqdm(total=len(items), initial=len(states), unit="item", disable=not progress,
                   desc=f"build {source.name}", dynamic_ncols=True)
        produced, failed = 0.0, 0
        try:
            for row in run:
                write_json_atomic(state_path(out, row["source_id"]), row)
                states[row["source_id"]] = row
                accepted += accepted_seconds(row)
                produced += row.get("seconds", 0.0)
                failed += row["status"] != "ok"
                elapsed = time.perf_counter() - started
                bar.set_postfix(rtf=f"{produced / max(elapsed, 1e-9):.1f}x", failed=failed)
                bar.update(1)
        finally:
            bar.close()
        clip_rows, report = [], []
        for item in items:
            state = states.get(item.source_id)
            if state is None:  # --target-hours was reached before it was queued
                state = {"source_id": item.source_id, "source": item.label, "split": item.split,
                         "status": "not_queued", "clips": 0,
                         "message": f"--target-hours {target_hours:g} reached "
                                    f"({accepted / 3600:.3f} h accepted) before this item was "
                                    "queued; rerun with a larger target to continue"}
            clip_rows.extend(state.get("rows", []))
            report.append({k: v for k, v in state.items() if k not in ("rows", "rejected")})
            report.extend(rejected_rows(state))
        write_json_atomic(out / "clips.jsonl", clip_rows, lines=True)
        write_json_atomic(out / "report.json", report)
    summary.duplicates = cross_split_duplicates(clip_rows)
    summary.wall_seconds = time.perf_counter() - started
    summary.accepted_seconds = accepted
    for r in report:
        if r["status"] == "rejected":
            summary.rejected += 1
        elif r["status"] == "ok":
            summary.ok += 1
            summary.clips += r["clips"]
            summary.seconds += r["seconds"]
        elif r["status"] == "not_queued":
            summary.not_queued += 1
        else:
            summary.failed += 1
            summary.failures_by_class[r["error_class"]] = summary.failures_by_class.get(r["error_class"], 0) + 1
    return summary
