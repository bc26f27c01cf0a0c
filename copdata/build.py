"""The build pipeline: source items -> fetch -> (transcribe) -> clips -> writer.

:func:`build_dataset` is what ``copdata build`` runs. Items are independent and
processed by :func:`process_item` in worker processes (``executor="local"``) or
on a Ray cluster (``executor="ray"``); the same function runs either way, so the
output is identical. Each finished item leaves a state file under ``.state/``
(written after its clips are renamed into place), so killing a build at any
moment and rerunning it resumes where it stopped. ``clips.jsonl`` and
``report.json`` are rewritten from the state files at the end of every run.

One item goes through named stages: :func:`item_notes` (fetch; ground-truth
notes or a streamed transcription), :func:`plan_clips` (the clip spans) and
:meth:`ClipCutter.write` (one clip: frames, audio, MIDI, roll, steps, row).
A recorded source's audio is never held whole: it is read as a block stream
once to transcribe (:mod:`copdata.transcribe_stream`) and once more while the
clips are cut, so a worker's memory does not grow with the source's length.
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
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from . import __version__
from .audio_stream import AudioCursor
from .dataset import (SCHEMA_VERSION, ClipWriter, check_ours_to_delete, derive_views,
                      remove_partial_clips, write_json_atomic)
from .errors import (BuildLockedError, CopDataError, DatasetError, ManifestError,
                     QualityRejectedError, SilentInputError, TooShortError)
from .ids import check_split_name, clip_id, sanitize_source_id
from .integrity import cross_split_duplicates, view_hashes
from .media import as_written, full_scale_gain
from .notes import Note
from .qa.stage import ClipObserver, audio_margin, clip_qa, measure_source_offset, qa_info
from .rows import ClipRow, ClipStats
from .sources.base import BuildSettings, Performance, Source, SourceItem
from .workers import init_worker

log = logging.getLogger(__name__)
STATE_DIR = ".state"
SILENT_RMS_DBFS = -80.0  # an item whose RMS level is below this is silence


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


def _transcriber(settings: BuildSettings):
    """The worker's transcriber for these settings (loaded once per process)."""
    from .transcribe import transcriber_for

    return transcriber_for(settings.transcriber, onset_threshold=settings.onset_threshold,
                           frame_threshold=settings.frame_threshold,
                           min_note_ms=settings.min_note_ms, device=settings.transcriber_device)


def item_notes(source: Source, item: SourceItem, settings: BuildSettings,
               spool_dir: str | Path | None = None) -> ItemNotes:
    """Stage 1: fetch the item and find its notes: the ground truth, or the
    transcription of its audio, streamed block by block
    (:func:`copdata.transcribe_stream.transcribe_blocks`; ``spool_dir`` holds
    its temporary posterior file). Raises :class:`SilentInputError` for
    silent audio."""
    perf = source.fetch(item, settings)
    if perf.notes is not None:
        return ItemNotes(perf, perf.notes, perf.midi_origin)
    from .transcribe_post import apply_steps

    transcriber = _transcriber(settings)
    notes, audio = transcriber.transcribe_blocks(perf.audio_blocks(), settings.sample_rate,
                                                 item=item.label, spool_dir=spool_dir)
    if settings.note_post:
        notes = apply_steps(notes, settings.note_post)
    if audio.rms_dbfs < SILENT_RMS_DBFS:
        raise SilentInputError(f"audio is silent (below {SILENT_RMS_DBFS:g} dBFS RMS); nothing "
                               "to transcribe", item=item.label)
    return ItemNotes(perf, notes, "transcription", audio_gain=full_scale_gain(audio.peak))


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


def _fill_clip(frames: Iterator[np.ndarray], count: int, encoder, observer=None) -> tuple[int, tuple]:
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
        if observer is not None:
            observer(rgb)
        written += 1
    return written, shape


def fit_full_scale(audio: np.ndarray, gain: float = 1.0) -> tuple[np.ndarray, float]:
    """``audio`` times ``gain`` (the item's :func:`~copdata.media.full_scale_gain`),
    and lower still if the clip would still peak above full scale (a safety net:
    the 16-bit file never hard-clips); returns the audio and the gain applied."""
    peak = float(np.max(np.abs(audio))) * gain if len(audio) else 0.0
    gain *= full_scale_gain(peak)
    if gain == 1.0:
        return audio, 1.0
    return (audio * np.float32(gain)).astype(np.float32), gain


class ClipCutter:
    """Stage 3: write the clips of one item, in order, from its frame stream.

    :meth:`write` cuts one span: it skips frames up to the span, encodes the
    span's frames (the QA stage's :class:`~copdata.qa.stage.ClipObserver` sees
    them as they go), runs the QA stage (:func:`copdata.qa.stage.clip_qa` on
    the span's audio with a margin for offset correction), writes audio, MIDI,
    roll and steps, and renames the clip into place. It returns the clip's
    :class:`ClipRow`; None when the QA thresholds reject the clip (appended to
    ``rejected``) or when the video or audio ended inside the span (``ended``
    is then set and ``warning`` says so).
    """

    def __init__(self, item: SourceItem, notes: ItemNotes, settings: BuildSettings, out_dir: str,
                 source_offset: dict | None = None):
        self.item, self.notes, self.settings, self.out_dir = item, notes, settings, out_dir
        self.source_offset = source_offset  # the item's one offset (--qa-correct-offset)
        self.frames = notes.performance.frames()
        self.audio = AudioCursor(notes.performance.audio_blocks())
        self.cursor = 0  # frames consumed
        self.written: list[Path] = []
        self.rejected: list[dict] = []
        self.warning: str | None = None
        self.ended = False

    def _end(self, warning: str | None = None) -> None:
        self.ended = True
        if warning:
            self.warning = warning

    def write(self, span: ClipSpan) -> ClipRow | None:
        settings, perf = self.settings, self.notes.performance
        F, S = settings.frames_per_clip, settings.samples_per_clip
        skipped, _ = _fill_clip(self.frames, span.first_frame - self.cursor, None)
        self.cursor += skipped
        if self.cursor < span.first_frame:
            self._end()
            return None
        margin = audio_margin(settings)  # spans move forward, so does the window
        w0 = max(span.first_sample - margin, 0)
        window = self.audio.take(w0, span.first_sample - w0 + S + margin)
        if len(window) < span.first_sample - w0 + S:
            self._end(f"audio ended at {self.audio.samples_read / settings.sample_rate:.3f}"
                      f" s, inside clip {span.segment}")
            return None
        cid = clip_id(self.item.source_id, span.segment)
        meta = clip_meta(perf.meta, span.t0, span.t1)
        observer = ClipObserver(F)
        writer = ClipWriter(self.out_dir, cid)
        try:
            resumed = writer.final.exists()  # finished by an interrupted earlier run
            if resumed:
                n, shape = _fill_clip(self.frames, F, None, observer)
            else:
                with writer.video_encoder(settings.fps, settings.video_preset,
                                          settings.video_crf) as enc:
                    n, shape = _fill_clip(self.frames, F, enc, observer)
            self.cursor += n
            if n < F:
                self._end(f"video ended at {self.cursor / settings.fps:.2f} s, before the "
                          f"{perf.duration:.2f} s the container declares")
                return None
            checked = clip_qa(observer, window, w0, self.notes.notes, span.t0, settings,
                              recorded=self.notes.midi_origin == "transcription",
                              source_offset=self.source_offset)
            if checked.reasons:
                self.rejected.append({"clip_id": cid, "segment": span.segment, "qa": checked.qa,
                                      "reasons": checked.reasons})
                return None
            views = derive_views(checked.notes, settings.clip_seconds, settings.fps, F, meta,
                                 checked.qa["claims"])
            audio, gain = fit_full_scale(checked.audio, self.notes.audio_gain)
            if not resumed:
                writer.write_views(audio, settings.sample_rate, views)
                writer.commit()
                self.written.append(writer.final)
        finally:
            writer.abort()
        offset = self.item.start or 0.0
        return ClipRow(
            id=cid, split=self.item.split, source_id=self.item.source_id, source=self.item.label,
            segment=span.segment, start=round(offset + span.t0, 6),
            end=round(offset + span.t1, 6), midi_origin=self.notes.midi_origin, meta=meta,
            stats=ClipStats.measure(views.notes, views.roll, as_written(audio), shape,
                                    settings.clip_seconds,
                                    audio_gain_db=round(20 * math.log10(gain), 2)),
            extra={"hashes": view_hashes(writer.final),  # checked by copdata validate
                   "qa": checked.qa})


def process_item(source: Source, item: SourceItem, settings: BuildSettings, out_dir: str) -> dict:
    """Fetch one item and write its clips; returns its report row with clip rows.

    The stages: :func:`item_notes`, :func:`plan_clips`, then
    :meth:`ClipCutter.write` for each span. Never raises for bad input: a
    :class:`CopDataError` becomes a failed row with its class and message;
    anything else a failed ``InternalError`` row. A failed item leaves no
    clips behind.
    """
    started = time.perf_counter()
    row = {"source_id": item.source_id, "source": item.label, "split": item.split}
    cutter = None
    try:
        try:
            check_split_name(item.split)
        except ValueError as exc:  # every source's splits, checked before any write
            raise ManifestError(str(exc), item=item.label) from None
        notes = item_notes(source, item, settings, spool_dir=Path(out_dir) / STATE_DIR)
        spans = plan_clips(notes.performance.duration, item, settings)
        source_offset = None
        if settings.qa_correct_offset and spans:  # one offset per item, from all its clips
            source_offset = measure_source_offset(notes.performance.frames(),
                                                  [s.first_frame for s in spans],
                                                  settings.frames_per_clip, settings.fps, notes.notes)
            row["av_offset_source"] = source_offset
        cutter = ClipCutter(item, notes, settings, out_dir, source_offset)
        clip_rows: list[ClipRow] = []
        for span in spans:
            clip = cutter.write(span)
            if cutter.ended:
                break
            if clip is not None:  # None: rejected by the QA stage (cutter.rejected)
                clip_rows.append(clip)
        if cutter.warning:
            row["warning"] = cutter.warning
        if cutter.rejected:
            row["rejected"] = cutter.rejected
        if not clip_rows and cutter.rejected:
            raise QualityRejectedError(f"all {len(cutter.rejected)} clips failed the QA thresholds "
                                       f"(first: {'; '.join(cutter.rejected[0]['reasons'])})",
                                       item=item.label)
        if not clip_rows:
            raise TooShortError("no complete clip could be cut (the video stream is shorter "
                                "than one clip)", item=item.label)
        row.update(status="ok", clips=len(clip_rows),
                   seconds=len(clip_rows) * settings.clip_seconds,
                   midi_origin=notes.midi_origin, rows=[c.to_dict() for c in clip_rows])
    except CopDataError as exc:
        row.update(status="failed", error_class=exc.error_class, message=str(exc), clips=0)
    except Exception as exc:  # a bug or an unexpected library error: report, don't crash
        log.debug("item %s failed:\n%s", item.label, traceback.format_exc())
        row.update(status="failed", error_class=f"InternalError.{type(exc).__name__}",
                   message=f"{item.label}: {exc}", clips=0)
    if row["status"] != "ok" and cutter is not None:
        for path in cutter.written:
            shutil.rmtree(path, ignore_errors=True)
    row["wall_seconds"] = round(time.perf_counter() - started, 3)
    return row


def rejected_rows(state: dict) -> list[dict]:
    """``report.json`` rows (status ``rejected``) for an item's clips that failed
    the QA thresholds, with the reasons and the measured signals."""
    return [{"source_id": state["source_id"], "source": state.get("source"),
             "clip_id": r["clip_id"], "segment": r["segment"], "status": "rejected",
             "error_class": "QualityRejected", "message": "; ".join(r["reasons"]), "qa": r["qa"]}
            for r in state.get("rejected", [])]


# ------------------------------------------------------------------ executors

def _always() -> bool:
    return True


def _run_local(source, items, settings, out_dir, workers,
               keep_going: Callable[[], bool] = _always) -> Iterator[dict]:
    """Process items in order; a new item is queued only while ``keep_going()``
    (at most two per worker are queued or running at any time)."""
    if workers <= 1:
        for item in items:
            if not keep_going():
                return
            yield process_item(source, item, settings, out_dir)
        return
    share = max(1, len(os.sched_getaffinity(0)) // workers)
    queue = iter(items)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=init_worker, initargs=(share, os.getpid())) as pool:
        running: set = set()

        def fill() -> None:
            while len(running) < 2 * workers and keep_going():
                item = next(queue, None)
                if item is None:
                    return
                running.add(pool.submit(process_item, source, item, settings, out_dir))

        fill()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                running.discard(future)
                yield future.result()
            fill()


def _run_ray(source, items, settings, out_dir, workers, address,
             keep_going: Callable[[], bool] = _always) -> Iterator[dict]:
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
    queue = iter(items)
    pending: list = []
    in_flight = 2 * max(workers, int(ray.cluster_resources().get("CPU", 1)))

    def fill() -> None:
        while len(pending) < in_flight and keep_going():
            item = next(queue, None)
            if item is None:
                return
            pending.append(remote.remote(source_ref, item, settings, out_dir))

    fill()
    while pending:
        done, pending[:] = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])
        fill()


def clip_accepted(row: ClipRow) -> bool:
    """Whether a written clip counts as accepted (toward ``--target-hours``).

    The one place that decides it: a clip in an item's rows is accepted unless
    a QA stage marked it rejected (its ``qa`` object has ``"passed": false``
    or ``"accepted": false``). Clips a QA stage drops are not in the rows at
    all and so never count.
    """
    qa = row.extra.get("qa")
    if isinstance(qa, dict):
        return qa.get("passed", True) is not False and qa.get("accepted", True) is not False
    return True


def accepted_seconds(state: dict) -> float:
    """Seconds of accepted clips of one finished item (its report/state row)."""
    if state.get("status") != "ok":
        return 0.0
    return sum(r.seconds for r in map(ClipRow.from_dict, state.get("rows", []))
               if clip_accepted(r))


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
        "audio_level": "decoded audio that peaks above full scale is scaled by 1/peak "
                       "(one gain per source item, lowered for a clip that would still clip), "
                       "never hard-clipped; each clip's gain is stats.audio_gain_db and the "
                       "written file's peak stats.audio_peak_dbfs",
        "qa": qa_info(settings, recorded=source.transcribes),
        "copdata_version": __version__,
    }
    if source.transcribes:
        from .transcribe import resolve_transcriber_name, transcriber_info

        # threads and device are runtime choices, not part of the output
        info["transcriber"] = transcriber_info(_transcriber(settings), settings.note_post)
        info["build"]["transcriber"] = resolve_transcriber_name(settings.transcriber)
    else:  # ground-truth notes: no transcriber runs (so none is recorded)
        info["build"].update(transcriber=None, note_post=[])
    info["build"].pop("transcriber_device", None)
    return info


# Provenance that a resumed build may change without changing the output.
_IGNORED_ON_RESUME = ("copdata_version",)
_IGNORED_SOURCE_KEYS_ON_RESUME = ("downloader",)


def _output_settings(info: dict) -> dict:
    info = json.loads(json.dumps(info))  # as stored: tuples become lists
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


def check_settings(settings: BuildSettings) -> None:
    """Refuse clip settings outside :data:`copdata.options.LIMITS` before any
    work (the CLI refuses them when parsing; this guards the Python API)."""
    import math

    from .options import LIMITS
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
        accepted = sum(accepted_seconds(state) for state in states.values())

        def keep_going() -> bool:
            return target_hours is None or accepted < target_hours * 3600.0

        run = (_run_ray(source, pending, settings, str(out), workers, ray_address, keep_going)
               if executor == "ray" else
               _run_local(source, pending, settings, str(out), workers, keep_going))
        bar = tqdm(total=len(items), initial=len(states), unit="item", disable=not progress,
                   desc=f"build {source.name}", dynamic_ncols=True)
        produced, failed = 0.0, 0
        try:
            for row in run:
                write_json_atomic(_state_path(out, row["source_id"]), row)
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
